"""Runs from the MLflow store as one pandas row each: ``run_id``, ``status``, ``tags.*``,
``params.*``, ``metrics.*`` (the column names ``mlflow.search_runs`` uses).

Equality filters on tags and params go to the store; list values (``method=[static, qat]``) and
values MLflow's filter grammar cannot quote are applied here, in pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from src.errors import UserError
from src.tracking.mlflow_run import default_tracking_uri, resolve_tracking_uri

PARENT_TAG = "mlflow.parentRunId"
_PAGE = 1000


def load_runs(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    filters: Mapping[str, object] | None = None,
    parent_run_id: str | None = None,
    include_baselines: bool = True,
) -> pd.DataFrame:
    """Every run (any status) of the store that matches, one row per run.

    Args:
        tracking_uri: The store; None: ``MLFLOW_TRACKING_URI`` or the repo's SQLite file.
        experiment: MLflow experiment name; None searches all experiments.
        filters: ``{key: value}``; a plain key is a tag (``data``, ``brand``, ``model``,
            ``method``, ``seed`` ...), ``params.<key>`` a param. A list value matches any of its
            items. None values are ignored.
        parent_run_id: Keep only the children of this run (one sweep).
        include_baselines: Also load the runs named by the selected runs' ``baseline_run_id``
            tags, so every variant's own baseline is at hand; they get ``selected_by`` =
            ``"baseline_run_id"`` (the others ``"filter"``).

    Returns:
        Columns ``run_id``, ``experiment``, ``status``, ``start_time``, ``selected_by`` and the
        flattened ``tags.*``, ``params.*``, ``metrics.*`` (strings for tags and params, floats
        for metrics; missing values are NaN). Empty (no rows) when nothing matches.

    Example:
        >>> runs = load_runs("sqlite:///mlruns/mlflow.db", filters={"data": "battery"})
        >>> runs[["tags.method", "metrics.test/auroc"]].head()
    """
    client = open_store(tracking_uri)
    experiments = _experiment_ids(client, experiment)
    clauses, local = _split_filters(dict(filters or {}))
    if parent_run_id:
        clauses.append(_clause(f"tags.{PARENT_TAG}", parent_run_id))
    runs = _search(client, experiments, " and ".join(clauses))
    frame = _apply_local(runs_to_frame(runs, client), local)
    frame["selected_by"] = "filter"
    if include_baselines and not frame.empty:
        frame = _with_baselines(client, frame)
    return frame.reset_index(drop=True)


def open_store(tracking_uri: str | None) -> MlflowClient:
    """A client on an existing store. A SQLite file that does not exist is an error, not a new
    empty store: the leaderboard never writes to the store it reads."""
    uri = str(tracking_uri or default_tracking_uri()).strip()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise UserError(
            f"no MLflow store at {uri}: train first (python -m src.train) or point tracking_uri "
            "(or MLFLOW_TRACKING_URI) at your store"
        )
    return MlflowClient(resolve_tracking_uri(uri))


def find_parent_run(tracking_uri: str | None, sweep_id: str) -> str:
    """Run id of the parent run of sweep ``sweep_id`` (the run tagged ``sweep_id`` that has no
    parent itself)."""
    client = open_store(tracking_uri)
    runs = _search(client, _experiment_ids(client, None), _clause("tags.sweep_id", sweep_id))
    parents = [r.info.run_id for r in runs if PARENT_TAG not in r.data.tags]
    if len(parents) != 1:
        found = "no run" if not parents else f"{len(parents)} runs ({', '.join(parents)})"
        raise UserError(
            f"sweep_id={sweep_id}: {found} tagged sweep_id={sweep_id} without a parent in "
            f"{client.tracking_uri}; pass parent_run_id=<run id> instead"
        )
    return parents[0]


def runs_to_frame(runs: Iterable[Run], client: MlflowClient) -> pd.DataFrame:
    """One row per run with ``search_runs``-style column names."""
    names = {}
    rows = []
    for run in runs:
        exp_id = run.info.experiment_id
        if exp_id not in names:
            names[exp_id] = client.get_experiment(exp_id).name
        row = {
            "run_id": run.info.run_id,
            "experiment": names[exp_id],
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
        }
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": float(v) for k, v in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "experiment", "status"])


def _experiment_ids(client: MlflowClient, experiment: str | None) -> list[str]:
    if experiment is None:
        return [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        known = sorted(e.name for e in client.search_experiments())
        raise UserError(f"experiment_name={experiment!r} is not in the store; choose from {known}")
    return [found.experiment_id]


def _search(client: MlflowClient, experiments: list[str], filter_string: str) -> list[Run]:
    if not experiments:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(experiments, filter_string, max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _column(key: str) -> str:
    """``data`` -> ``tags.data``; ``params.x`` and ``tags.x`` stay as they are."""
    return key if key.startswith(("tags.", "params.")) else f"tags.{key}"


def _clause(column: str, value: str) -> str:
    kind, _, name = column.partition(".")
    return f"{kind}.`{name}` = '{value}'"


def _split_filters(filters: dict) -> tuple[list[str], dict[str, list[str]]]:
    """Store-side clauses for single values, pandas-side ``{column: allowed}`` for the rest."""
    clauses, local = [], {}
    for key, value in filters.items():
        if value is None:
            continue
        column = _column(str(key))
        if isinstance(value, (list, tuple, set)) or "'" in str(value) or "`" in column:
            values = value if isinstance(value, (list, tuple, set)) else [value]
            local[column] = [str(v) for v in values]
        else:
            clauses.append(_clause(column, str(value)))
    return clauses, local


def _apply_local(frame: pd.DataFrame, local: dict[str, list[str]]) -> pd.DataFrame:
    for column, allowed in local.items():
        values = frame[column] if column in frame else pd.Series(None, index=frame.index)
        frame = frame[values.isin(allowed)]
    return frame


def _with_baselines(client: MlflowClient, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the baseline runs that the selected method runs were measured against."""
    if "tags.baseline_run_id" not in frame:
        return frame
    wanted = set(frame["tags.baseline_run_id"].dropna()) - set(frame["run_id"])
    if not wanted:
        return frame
    quoted = ", ".join(f"'{run_id}'" for run_id in sorted(wanted))
    experiments = _experiment_ids(client, None)
    extra = runs_to_frame(_search(client, experiments, f"attributes.run_id IN ({quoted})"), client)
    extra["selected_by"] = "baseline_run_id"
    return pd.concat([frame, extra], ignore_index=True)
