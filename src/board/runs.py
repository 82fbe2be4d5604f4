"""Runs from the MLflow store as one pandas row each: ``run_id``, ``status``, ``tags.*``,
``params.*``, ``metrics.*`` (the column names ``mlflow.search_runs`` uses).

Equality filters on tags and params go to the store; list values (``method=[static, qat]``),
values MLflow's filter grammar cannot quote, and a key naming several tags (:data:`MODEL_OR_FAMILY`:
any of them may match, which the grammar cannot say) are applied here, in pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
from mlflow.entities import Run

from src.board import columns as col
from src.core import schema
from src.tracking.store import RunStore, clause, tag_clause

# MLflow's SQL store loads a page's runs with all their tags, params and metrics as ORM objects
# (about 0.4 MB a run measured); 50 a page keeps that transient small (a board of 1,000 runs
# peaked 15 MB lower than at 100 a page, in the same time).
_PAGE = 50
# The leaderboard's ``model=X``: runs of model X, or of every model of family X (``model=dyad``).
MODEL_OR_FAMILY = (schema.MODEL, schema.MODEL_FAMILY)


def load_runs(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    filters: Mapping[str, object] | None = None,
    parent_run_id: str | None = None,
    include_baselines: bool = True,
    params: Sequence[str] | None = None,
    store: RunStore | None = None,
) -> pd.DataFrame:
    """Every run (any status) of the store that matches, one row per run.

    The store is read a page at a time and each page reduced to its row before the next is
    fetched, so memory grows with the rows kept, not with MLflow's run objects.

    Args:
        tracking_uri: The store; None: ``MLFLOW_TRACKING_URI`` or the repo's SQLite file. It
            must exist: the leaderboard never creates (or writes to) the store it reads.
        experiment: MLflow experiment name; None searches all experiments.
        filters: ``{key: value}``; a plain key is a tag (``data``, ``data_variant``, ``model``,
            ``method``, ``seed`` ...), ``params.<key>`` a param, a tuple of tags (such as
            :data:`MODEL_OR_FAMILY`) a run any of whose tags matches. A list value matches any
            of its items. None values are ignored.
        parent_run_id: Keep only the children of this run (one sweep), and the earlier runs of
            identical jobs that joined it (tag ``joined.<parent_run_id>``).
        include_baselines: Also load the runs named by the selected runs' ``baseline_run_id``
            tags, so every variant's own baseline is at hand; they get ``selected_by`` =
            ``"baseline_run_id"`` (the others ``"filter"``).
        params: Keep only the params whose names start with one of these (the leaderboard's
            :func:`src.board.variants.board_params`); None keeps every param. Params named in
            ``filters`` are always kept. Tags and metrics are always kept.
        store: The store, already open (the leaderboard's one handle); None: open
            ``tracking_uri``.

    Returns:
        Columns ``run_id``, ``experiment``, ``status``, ``start_time``, ``selected_by`` and the
        flattened ``tags.*``, ``params.*``, ``metrics.*`` (strings for tags and params, floats
        for metrics; missing values are NaN). Empty (no rows) when nothing matches.

    Example:
        >>> runs = load_runs("sqlite:///mlruns/mlflow.db", filters={"data": "battery"})
        >>> runs[["tags.method", "metrics.test/auroc"]].head()
    """
    store = store or RunStore.open(tracking_uri)
    clauses, local = _split_filters(dict(filters or {}))
    if params is not None:
        named = [k for k in filters or {} if isinstance(k, str) and k.startswith(col.PARAMS)]
        params = (*params, *(k.removeprefix(col.PARAMS) for k in named))
    queries = [clauses]
    if parent_run_id:  # the sweep's children, and the earlier identical runs that joined it
        queries = [
            [*clauses, tag_clause(schema.PARENT_RUN_ID, parent_run_id)],
            [*clauses, tag_clause(schema.JOINED + parent_run_id, "1")],
        ]
    pages = (page for q in queries for page in store.pages(q, experiment, page_size=_PAGE))
    frame = _apply_local(runs_to_frame(pages, store, params), local)
    if not frame.empty:
        frame = frame.drop_duplicates(col.RUN_ID)
    frame[col.SELECTED_BY] = col.SELECTED_BY_FILTER
    if include_baselines and not frame.empty:
        frame = _with_baselines(store, frame, params)
    return frame.reset_index(drop=True)


def runs_to_frame(
    pages: Iterable[Iterable[Run]], store: RunStore, params: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per run with ``search_runs``-style column names, built a page at a time.

    Args:
        pages: Runs in pages (:meth:`RunStore.pages`); a page is dropped once it is a frame.
        store: Names the runs' experiments.
        params: Param name prefixes to keep (None: all).
    """
    names: dict[str, str] = {}
    prefixes = None if params is None else tuple(params)
    frames = []
    for page in pages:
        rows = [_row(run, names, store, prefixes) for run in page]
        if rows:
            frames.append(pd.DataFrame(rows))
    if not frames:
        return pd.DataFrame(columns=[col.RUN_ID, col.EXPERIMENT, col.STATUS])
    return pd.concat(frames, ignore_index=True)


def _row(run: Run, names: dict[str, str], store: RunStore, prefixes: tuple | None) -> dict:
    exp_id = run.info.experiment_id
    if exp_id not in names:
        names[exp_id] = store.experiment_name(exp_id)
    row = {
        col.RUN_ID: run.info.run_id,
        col.EXPERIMENT: names[exp_id],
        col.STATUS: run.info.status,
        col.START_TIME: pd.to_datetime(run.info.start_time, unit="ms", utc=True),
    }
    row.update({col.tag(k): v for k, v in run.data.tags.items()})
    kept = run.data.params.items()
    if prefixes is not None:
        kept = [(k, v) for k, v in kept if k.startswith(prefixes)]
    row.update({col.param(k): v for k, v in kept})
    row.update({col.metric(k): float(v) for k, v in run.data.metrics.items()})
    return row


def _column(key: str) -> str:
    """``data`` -> ``tags.data``; ``params.x`` and ``tags.x`` stay as they are."""
    return key if key.startswith((col.TAGS, col.PARAMS)) else col.tag(key)


def _split_filters(filters: dict) -> tuple[list[str], dict[tuple[str, ...], list[str]]]:
    """Store-side clauses for single values on one column, pandas-side ``{columns: allowed}``
    for the rest (a run is kept when any of the columns holds an allowed value)."""
    clauses, local = [], {}
    for key, value in filters.items():
        if value is None:
            continue
        columns = tuple(_column(str(k)) for k in (key if isinstance(key, tuple) else [key]))
        many = isinstance(value, (list, tuple, set))
        if many or len(columns) > 1 or "'" in str(value) or "`" in columns[0]:
            local[columns] = [str(v) for v in (value if many else [value])]
        else:
            clauses.append(clause(columns[0], str(value)))
    return clauses, local


def _apply_local(frame: pd.DataFrame, local: dict[tuple[str, ...], list[str]]) -> pd.DataFrame:
    for columns, allowed in local.items():
        kept = pd.Series(False, index=frame.index)
        for column in columns:
            if column in frame:
                kept |= frame[column].isin(allowed)
        frame = frame[kept]
    return frame


def _with_baselines(
    store: RunStore, frame: pd.DataFrame, params: Sequence[str] | None
) -> pd.DataFrame:
    """Add the baseline runs that the selected method runs were measured against."""
    column = col.tag(schema.BASELINE_RUN_ID)
    if column not in frame:
        return frame
    wanted = set(frame[column].dropna()) - set(frame[col.RUN_ID])
    if not wanted:
        return frame
    quoted = ", ".join(f"'{run_id}'" for run_id in sorted(wanted))
    extra = runs_to_frame(store.pages([f"attributes.run_id IN ({quoted})"]), store, params)
    extra[col.SELECTED_BY] = schema.BASELINE_RUN_ID
    return pd.concat([frame, extra], ignore_index=True)


class PairedTables:
    """A run's paired per-unit table (``tables/paired_units.csv``), read from the store once.

    Args:
        tracking_uri: The store; None: ``MLFLOW_TRACKING_URI`` or the repo's SQLite file.
        store: The store, already open (the leaderboard's one handle); it wins over the URI.

    Example:
        >>> tables = PairedTables(uri)
        >>> tables(run_id)[["unit", "baseline", "variant"]]
    """

    def __init__(self, tracking_uri: str | None = None, store: RunStore | None = None) -> None:
        self.store = store or RunStore.open(tracking_uri)
        self._cache: dict[tuple[str, str], pd.DataFrame | None] = {}

    def __call__(self, run_id: str, name: str = schema.PAIRED_TABLE) -> pd.DataFrame | None:
        """The run's table ``name`` (the eager variant's paired table by default; a runtime's
        is :func:`src.core.schema.runtime_paired_table`), None when it has none."""
        if (run_id, name) not in self._cache:
            self._cache[run_id, name] = self.store.read_table(run_id, name)
        return self._cache[run_id, name]
