"""Where a search keeps its Optuna study, and what a resumed study gives back
(:func:`restore`). The study lives beside the tracking store's own database, so that a killed
search resumes from the store the user already named (never a second place to know).

- ``sqlite:///<dir>/<name>.db`` (the default store): ``sqlite:///<dir>/<name>-optuna.db``, a
  sibling file. Not the same file: MLflow and Optuna both version their tables with Alembic's
  one ``alembic_version`` table, and each would read the other's revision.
- ``postgresql://...``: the same database, in its own schema ``optuna`` (created if missing).
- anything else (an MLflow server over HTTP, a file store): no database this process reaches;
  ``search.storage=<database URL>`` names one, else the study lives in memory and says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import optuna

from src.core.errors import ConfigError
from src.search.trials import Trial

log = logging.getLogger(__name__)
SCHEMA = "optuna"  # the PostgreSQL schema a study's tables live in
MEMORY = "memory"


@dataclass(frozen=True)
class StudyRef:
    """A study to open: its storage (None: memory), name, and how a restored trial's figures
    are read again (``read_metrics(run_id) -> metrics``)."""

    storage: Any = None
    name: str | None = None
    read_metrics: Any = None


def record(ask: optuna.trial.Trial, trial: Trial) -> None:
    """What a resumed study needs of a launched trial, on its Optuna trial (before it is
    told): its overrides, run, settled method and error."""
    ask.set_user_attr("overrides", list(trial.overrides))
    ask.set_user_attr("run_id", trial.run_id)
    ask.set_user_attr("method", _plain(trial.method))
    ask.set_user_attr("error", trial.error)


def _plain(value: Any) -> Any:
    """``value`` as JSON can store it (a method config holds tuples and numpy scalars)."""
    return json.loads(json.dumps(value, default=str))


def restore(study: optuna.Study, read_metrics) -> tuple[list[Trial], dict]:
    """A stored study's launched trials as :class:`Trial` rows (their figures read again from
    their runs) and each launched candidate's told values; a trial a kill left running is
    failed."""
    trials, told = [], {}
    for frozen in study.get_trials(deepcopy=False):
        attrs = frozen.user_attrs
        if frozen.state == optuna.trial.TrialState.RUNNING:
            study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
            continue
        if "overrides" not in attrs:  # a repeat, told and never launched
            continue
        trial = Trial(frozen.number, list(attrs["overrides"]), attrs.get("run_id"))
        trial.method, trial.error = dict(attrs.get("method") or {}), attrs.get("error")
        if trial.run_id is not None and read_metrics is not None:
            trial.metrics = read_metrics(trial.run_id)
        trials.append(trial)
        complete = frozen.state == optuna.trial.TrialState.COMPLETE
        told[tuple(trial.overrides)] = list(frozen.values) if complete else None
    return trials, told


def storage_url(tracking_uri: str, given: str | None = None) -> str | None:
    """The study's database URL (None: in memory) for ``tracking_uri``; ``given``:
    ``search.storage`` (a database URL, ``memory``, or None for the tracking store's)."""
    if given is not None:
        return None if given == MEMORY else given
    scheme = urlsplit(tracking_uri).scheme
    if scheme == "sqlite":
        path = tracking_uri.removeprefix("sqlite:///")
        stem = path[: -len(".db")] if path.endswith(".db") else path
        return f"sqlite:///{stem}-optuna.db"
    if scheme.startswith("postgresql"):
        return tracking_uri
    return None


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna's RDB storage at ``url`` (PostgreSQL: in schema :data:`SCHEMA`); None: memory.

    Raises:
        ConfigError: The database cannot be opened (one line, naming it).
    """
    if url is None:
        return None
    kwargs = {}
    if urlsplit(url).scheme.startswith("postgresql"):
        _create_schema(url)
        kwargs = {"connect_args": {"options": f"-csearch_path={SCHEMA}"}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as err:  # a driver's or Alembic's error: one line, what to do
        first = str(err).splitlines()[0][:300]
        raise ConfigError(
            f"search: the study's database {_redacted(url)} cannot be opened ({first}); fix it "
            "or pass search.storage=memory (a search that cannot resume)"
        ) from None


def _create_schema(url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    finally:
        engine.dispose()


def _redacted(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
