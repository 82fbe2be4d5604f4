"""The Model Registry side of shipping: a version per shipped variant, its tags and description
(the verdict, its interval and error rate, fidelity, speed, size, lineage, the command that
reproduces it), and the aliases: ``candidate`` on every registration, ``champion`` only when the
new version is non-inferior to the current champion on the same units (or when the user
overrides, which the version records). The old champion keeps its version and gets the alias
``previous-champion``."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.board.verdict import IDENTICAL, SHOWN_NON_INFERIOR, judge_table
from src.core import schema
from src.core.errors import UserError, first_line
from src.tracking.store import RunStore

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"
TRIES = 3  # registrations racing for the same version number


def check_registry(store: RunStore) -> None:
    """Refuse, in one line, a store whose backend has no Model Registry."""
    try:
        store.client.search_registered_models(max_results=1)
    except MlflowException as err:
        raise UserError(
            f"the store {store.uri} has no Model Registry ({first_line(err, 120)}); use a "
            "sqlite:/// store or an MLflow server with a database backend"
        ) from None


def next_version(client: MlflowClient, name: str) -> int:
    """The number the registry gives the next version of ``name``."""
    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return 1
    return max((int(v.version) for v in found), default=0) + 1


def register(client: MlflowClient, name: str, model_id: str, tags: dict, description: str):
    """A new version of ``name`` from the logged model ``models:/<model_id>``."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="Variants shipped by python -m src.ship, each with its verdict."
        )
    return client.create_model_version(
        name, f"models:/{model_id}", tags=tags, description=description, model_id=model_id
    )


@dataclass(frozen=True)
class Promotion:
    """Whether the new version took ``champion``, and why, in one line."""

    promoted: bool
    why: str


def promote(
    store: RunStore,
    name: str,
    version: str,
    run_id: str,
    runtime: str,
    rule: dict,
    override: bool = False,
    shown: bool = True,
) -> Promotion:
    """Set ``candidate``; move ``champion`` by the non-inferiority rule (``rule``: the board's
    ``statistic``, ``margin`` and ``higher_is_better``) or by ``override``. The first champion
    is a version the board ``shown`` fit to ship (its own choice), or an override."""
    client = store.client
    client.set_registered_model_alias(name, CANDIDATE, version)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if override:
        was = f"was version {champion.version}" if champion is not None else "no champion before"
        decision = Promotion(True, f"champion by override ({was})")
    elif champion is None:
        decision = Promotion(
            shown,
            "first champion of this model"
            if shown
            else "no champion yet: a variant the board did not choose takes it only with "
            "champion=force",
        )
    else:
        decision = _against(store, champion, run_id, runtime, rule)
    if decision.promoted:
        if champion is not None and champion.version != version:
            client.set_registered_model_alias(name, PREVIOUS, champion.version)
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "champion.decision", decision.why)
    return decision


def _against(store: RunStore, champion, run_id: str, runtime: str, rule: dict) -> Promotion:
    """The new version against the champion on the test units both were scored on."""
    old_runtime = champion.tags.get("runtime", schema.EAGER)
    old = _units(store, champion.run_id, old_runtime)
    new = _units(store, run_id, runtime)
    if old is None or new is None:
        return Promotion(False, "no per-unit table to compare with the champion; champion=force")
    table = old.merge(new, on=["unit", "label"], suffixes=("_b", "_v"))
    if len(table) != len(old) or len(table) != len(new):
        return Promotion(
            False,
            f"scored on other units than champion version {champion.version} ({len(old)} vs "
            f"{len(new)}, {len(table)} shared): not comparable; champion=force to promote anyway",
        )
    table = pd.DataFrame(
        {
            "unit": table.unit,
            "label": table.label,
            "baseline": table.value_b,
            "variant": table.value_v,
        }
    )
    verdict, est = judge_table(table, rule["statistic"], rule["margin"], rule["higher_is_better"])
    line = (
        f"vs champion version {champion.version} on {est.n_units} units: {verdict} "
        f"(Δ {est.difference:+.3f} [{est.ci_low:+.3f}, {est.ci_high:+.3f}], {est.method}, "
        f"margin {rule['margin']})"
    )
    return Promotion(verdict in SHOWN_NON_INFERIOR or verdict.startswith(IDENTICAL), line)


def _units(store: RunStore, run_id: str, runtime: str) -> pd.DataFrame | None:
    """A run's test units and its values there (``unit``, ``label``, ``value``) in ``runtime``:
    its own units table in eager, the runtime's paired table's variant column otherwise."""
    if runtime == schema.EAGER:
        table = store.read_table(run_id, schema.UNITS_TABLE)
        return None if table is None else table[["unit", "label", "value"]]
    table = store.read_table(run_id, schema.runtime_paired_table(runtime))
    return None if table is None else table[["unit", "label"]].assign(value=table.variant)
