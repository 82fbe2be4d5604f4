"""From runs to leaderboard rows: ratios against each run's own baseline, mean ± std and n over
folds and seeds, rank by one metric, Pareto front.

Every number comes from a logged run: the per-run ratios are the run's own ``size/ratio`` and
``latency/speedup_*`` (measured side by side with its baseline in one process); only a missing
``size/ratio`` is derived, from the ``size/mb`` of the run named by its ``baseline_run_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from src.board.pareto import pareto_front
from src.board.variants import IDENTITY, label_runs, newest_per_cell
from src.errors import UserError

BASELINE = "baseline"
# Metric areas that reach the board; train/*, val/*, time/* stay in MLflow.
AREAS = ("test/", "delta/", "size/", "latency/", "throughput/", "quant/", "vs_baseline/")
LATENCY = "latency/ms_p50_bs1"
SIZE = "size/mb"
COMPARE = ("data", "brand")  # rows ranked and Pareto-marked within one data set (and brand)
_CONF_DATA = Path(__file__).resolve().parents[2] / "conf" / "data"


def leaderboard(
    runs: pd.DataFrame,
    metric: str | None = None,
    higher_is_better: bool = True,
    split_by: Sequence[str] = (),
    dedupe: bool = True,
) -> pd.DataFrame:
    """Rank the variants of the FINISHED runs in ``runs``.

    Args:
        runs: Output of :func:`src.board.runs.load_runs` (other statuses are dropped here).
        metric: Ranking metric (``test/auroc``); None: the data's ``primary_metric``.
        higher_is_better: Direction of ``metric`` (ranking and Pareto front).
        split_by: Extra params that separate rows (see :func:`label_runs`).
        dedupe: Keep only the newest run per variant, fold and seed.

    Returns:
        One row per data/brand/model/variant: identity columns, ``n``, ``folds``, ``seeds``,
        ``run_ids``, ``<metric>:mean``/``:std``/``:n`` for every metric of :data:`AREAS`,
        ``rank`` (1 = best within its data and brand) and ``pareto``.

    Example:
        >>> board = leaderboard(load_runs(uri, filters={"data": "battery"}))
        >>> board[["model", "variant", "test/auroc:mean", "pareto"]]
    """
    per_run = prepare_runs(runs, metric, split_by, dedupe)
    return aggregate(per_run, resolve_metric(per_run, metric), higher_is_better)


def prepare_runs(
    runs: pd.DataFrame,
    metric: str | None = None,
    split_by: Sequence[str] = (),
    dedupe: bool = True,
) -> pd.DataFrame:
    """FINISHED training runs (tagged ``method``: not sweep parents), labelled
    (:func:`label_runs`), with ``metrics.vs_baseline/*`` ratios: the per-run view behind the
    board (the notebook plots per-fold values from it)."""
    finished = runs[is_counted(runs)]
    if finished.empty:
        raise UserError("no FINISHED runs to rank; check the filters and the runs' status")
    labelled = with_ratios(label_runs(finished, split_by), resolve_metric(finished, metric))
    return newest_per_cell(labelled) if dedupe else labelled


def is_counted(runs: pd.DataFrame) -> pd.Series:
    """FINISHED runs of ``src.train`` (every one is tagged ``method``)."""
    if "status" not in runs or "tags.method" not in runs:
        return pd.Series(False, index=runs.index)
    return (runs["status"] == "FINISHED") & runs["tags.method"].notna()


def resolve_metric(runs: pd.DataFrame, metric: str | None) -> str:
    """``metric``, or the ``primary_metric`` of the runs' data (one for all of them)."""
    if metric is None:
        metrics = {_primary_metric(d, t) for d, t in _data_tasks(runs)}
        if len(metrics) != 1:
            raise UserError(
                f"the runs' data sets rank by different metrics {sorted(metrics)}; select one "
                "data set (data=NAME) or give metric=NAME"
            )
        metric = metrics.pop()
    if f"metrics.{metric}" not in runs:
        known = sorted(c.removeprefix("metrics.") for c in runs if c.startswith("metrics.test/"))
        raise UserError(f"metric={metric} was not logged by these runs; choose from {known}")
    return metric


def with_ratios(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Add ``metrics.vs_baseline/{size_ratio,speedup_bs1,speedup_bsN,delta}`` per run: 1, 1, 1,
    0 for a baseline; the run's own logged values for a method run."""
    out = runs.copy()
    is_base = out["method"] == BASELINE
    size_ratio = _metric(out, "size/ratio").fillna(_size_ratio_from_baseline(out))
    columns = {
        "size_ratio": (size_ratio, 1.0),
        "speedup_bs1": (_metric(out, "latency/speedup_bs1"), 1.0),
        "speedup_bsN": (_metric(out, "latency/speedup_bsN"), 1.0),
        "delta": (_metric(out, f"delta/{metric.partition('/')[2] or metric}"), 0.0),
    }
    for name, (values, at_baseline) in columns.items():
        out[f"metrics.vs_baseline/{name}"] = values.where(~is_base, at_baseline)
    return out


def aggregate(per_run: pd.DataFrame, metric: str, higher_is_better: bool = True) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and n of every board metric per row identity; ranked and
    Pareto-marked within each data set (and brand)."""
    metrics = sorted((c for c in per_run if _area(c) is not None), key=lambda c: (_area(c), c))
    groups = per_run.groupby(list(IDENTITY), sort=False, dropna=False)
    board = groups.agg(
        task=("task", "first"),
        method=("method", "first"),
        n=("run_id", "size"),
        folds=("fold", _distinct),
        seeds=("seed", _distinct),
        run_ids=("run_id", " ".join),
    ).reset_index()
    stats = [_stats(groups, column) for column in metrics]
    board = pd.concat([board, *stats], axis=1) if stats else board
    return rank_and_mark(board, metric, higher_is_better)


def rank_and_mark(board: pd.DataFrame, metric: str, higher_is_better: bool) -> pd.DataFrame:
    """``rank`` by ``<metric>:mean`` and ``pareto`` (metric vs latency vs size), per data set."""
    score = f"{metric}:mean"
    objectives = {score: "max" if higher_is_better else "min", f"{LATENCY}:mean": "min"}
    objectives[f"{SIZE}:mean"] = "min"
    board = board.copy()
    board["rank"] = (
        board.groupby(list(COMPARE))[score]
        .rank(ascending=not higher_is_better, method="min")
        .astype("Int64")
    )
    board["pareto"] = False
    for _, group in board.groupby(list(COMPARE)):
        board.loc[group.index, "pareto"] = pareto_front(group, objectives)
    board = board.sort_values([*COMPARE, "rank", "model", "variant"], na_position="last")
    return board[["rank", *[c for c in board if c != "rank"]]].reset_index(drop=True)


def _stats(groups, column: str) -> pd.DataFrame:
    name = column.removeprefix("metrics.")
    values = groups[column]
    frame = pd.DataFrame(
        {
            f"{name}:mean": values.mean(),
            f"{name}:std": values.std(ddof=1),
            f"{name}:n": values.count(),
        }
    )
    return frame.reset_index(drop=True)


def _metric(frame: pd.DataFrame, name: str) -> pd.Series:
    column = f"metrics.{name}"
    return frame[column] if column in frame else pd.Series(np.nan, index=frame.index)


def _size_ratio_from_baseline(runs: pd.DataFrame) -> pd.Series:
    """``size/mb`` over that of the run's ``baseline_run_id`` (NaN when not loaded)."""
    if "tags.baseline_run_id" not in runs:
        return pd.Series(np.nan, index=runs.index)
    base_mb = _metric(runs, SIZE).set_axis(runs["run_id"])
    return _metric(runs, SIZE) / runs["tags.baseline_run_id"].map(base_mb)


def _area(column: str) -> int | None:
    """Position of the column's metric area in :data:`AREAS` (None: not a board metric)."""
    name = column.removeprefix("metrics.") if column.startswith("metrics.") else None
    return next((i for i, area in enumerate(AREAS) if name and name.startswith(area)), None)


def _distinct(values: pd.Series) -> str:
    unique = sorted(set(values), key=lambda v: (len(v), v))
    return ",".join(unique)


def _data_tasks(runs: pd.DataFrame) -> set[tuple[str, str]]:
    data = runs.get("tags.data", pd.Series("", index=runs.index)).fillna("")
    task = runs.get("tags.task", pd.Series("", index=runs.index)).fillna("")
    return set(zip(data, task, strict=True))


def _primary_metric(data: str, task: str) -> str:
    """From ``conf/data/<data>.yaml``, else from any data config of the same task."""
    by_data, by_task = _data_configs()
    if data in by_data:
        return by_data[data]
    if task in by_task:
        return by_task[task]
    raise UserError(
        f"no primary metric for data={data!r} (task {task!r}): no conf/data/{data}.yaml; "
        "give metric=NAME"
    )


@cache
def _data_configs() -> tuple[dict[str, str], dict[str, str]]:
    by_data, by_task = {}, {}
    for path in sorted(_CONF_DATA.glob("*.yaml")):
        conf = OmegaConf.load(path)
        if "primary_metric" in conf and "name" in conf:
            by_data[str(conf.name)] = str(conf.primary_metric)
            by_task.setdefault(str(conf.get("task", "")), str(conf.primary_metric))
    return by_data, by_task
