"""From runs to leaderboard rows: ratios against each run's own baseline, mean ± std and n over
folds and seeds, rank by one metric, Pareto front.

Every number comes from a logged run: the per-run ratios are the run's own ``size/ratio`` and
``latency/speedup_*`` (measured side by side with its baseline in one process); only a missing
``size/ratio`` is derived, from the ``size/mb`` of the run named by its ``baseline_run_id``.
What a metric means (its direction, whether it headlines) comes from the runs' own
``primary_metric`` and ``metric_specs`` tags, written by their task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.fidelity import with_fidelity
from src.board.rank import COMPARE, rank_and_mark
from src.board.runtimes import runtime_rows
from src.board.speed import comparable_speed, speed_from_pass
from src.board.variants import IDENTITY, label_runs, newest_per_cell
from src.board.verdict import Judgement, TableSource, judge
from src.core import schema
from src.core.errors import UserError
from src.core.metrics import MetricSpec, measured_direction, specs_from_json

SIZE = schema.SIZE_MB
__all__ = ["COMPARE", "Board", "aggregate", "build_board", "build_boards", "prepare_runs"]


@dataclass
class Board:
    """A ranked leaderboard and the per-run view behind it.

    Attributes:
        per_run: The FINISHED runs it aggregates, labelled, with ``vs_baseline/*`` ratios.
        rows: One row per data set, model and variant (see :func:`aggregate`).
        metric: The ranking metric.
        higher_is_better: Its direction.
        headline: Task metrics shown beside the ranking metric (from the runs' metric specs).
        margin: The non-inferiority margin of the verdicts (None: no verdicts).
        judgement: How the verdicts were reached: what was resampled, the interval methods,
            alpha and the family size (:class:`src.board.verdict.Judgement`).
        runtimes: One row per variant and deployment runtime (:mod:`src.board.runtimes`).
    """

    per_run: pd.DataFrame
    rows: pd.DataFrame
    metric: str
    higher_is_better: bool
    headline: list[str]
    margin: float | None = None
    judgement: Judgement = field(default_factory=Judgement)
    runtimes: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def resampled(self) -> str:
        """What the verdicts' intervals resampled, in words."""
        return self.judgement.resampled


def build_board(
    runs: pd.DataFrame,
    metric: str | None = None,
    higher_is_better: bool | None = None,
    split_by: Sequence[str] = (),
    dedupe: bool = True,
    margin: float | None = None,
    tables: TableSource | None = None,
    n_boot: int = 2000,
) -> Board:
    """Judge and rank the variants of the FINISHED runs in ``runs``.

    Args:
        runs: Output of :func:`src.board.runs.load_runs` (other statuses are dropped here).
        metric: Ranking metric (``test/auroc``); None: the runs' ``primary_metric`` tag.
        higher_is_better: Its direction; None: from the runs' metric specs.
        split_by: Extra params that separate rows (see :func:`label_runs`).
        dedupe: Keep only the newest run per variant, fold and seed.
        margin: Non-inferiority margin; None: the metric spec's (0.02 AUROC, 0.01 accuracy).
        tables: A run's paired per-unit table by run id (:class:`src.board.runs.PairedTables`);
            None: each row's verdict comes from its run's own logged interval, when it has one.
        n_boot: Bootstrap replicates of each row's recombined interval.

    Example:
        >>> board = build_board(load_runs(uri, filters={"data": "battery"}))
        >>> board.rows[["model", "variant", "test/auroc:mean", "pareto"]]
    """
    per_run = prepare_runs(runs, metric, split_by, dedupe)
    metric = resolve_metric(per_run, metric)
    if higher_is_better is None:
        higher_is_better = metric_direction(per_run, metric)
    rows, judgement = aggregate(per_run, metric), Judgement()
    spec = next((s for s in metric_specs(per_run) if s.name == metric), None)
    if spec is not None and spec.paired:  # verdicts exist for metrics the runs pair
        margin = spec.margin if margin is None else margin
        rows, judgement = judge(rows, per_run, spec, margin, tables, n_boot)
        rows = with_fidelity(rows, per_run)
    else:
        margin = None
    rows = rank_and_mark(rows, metric, higher_is_better, speed=comparable_speed(per_run))
    headline = headline_metrics(per_run, metric)
    paired = spec.paired if spec is not None else None
    by_runtime = runtime_rows(rows, per_run, metric, margin, higher_is_better, tables, paired)
    return Board(per_run, rows, metric, higher_is_better, headline, margin, judgement, by_runtime)


def build_boards(runs: pd.DataFrame, metric: str | None = None, **options) -> list[Board]:
    """:func:`build_board`, once per task family when no ``metric`` is given and the runs'
    tasks rank by different primary metrics (a store holding DyAD and CNN runs)."""
    column = col.tag(schema.PRIMARY_METRIC)
    counted = runs[is_counted(runs)]
    primaries = sorted(counted[column].dropna().unique()) if column in counted else []
    if metric is not None or len(primaries) < 2:
        return [build_board(runs, metric, **options)]
    return [build_board(runs[runs[column] == primary], primary, **options) for primary in primaries]


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
    labelled = speed_from_pass(label_runs(finished, split_by))
    labelled = with_ratios(labelled, resolve_metric(finished, metric))
    return newest_per_cell(labelled) if dedupe else labelled


def is_counted(runs: pd.DataFrame) -> pd.Series:
    """FINISHED runs of ``src.train`` (every one is tagged ``method``); analyses of a baseline
    (``src.sensitivity``, tagged ``analysis``) are not variants and never count."""
    column = col.tag(schema.METHOD)
    if col.STATUS not in runs or column not in runs:
        return pd.Series(False, index=runs.index)
    analysis = runs.get(col.tag(schema.ANALYSIS), pd.Series(None, index=runs.index))
    return (runs[col.STATUS] == "FINISHED") & runs[column].notna() & analysis.isna()


def resolve_metric(runs: pd.DataFrame, metric: str | None) -> str:
    """``metric``, or the ``primary_metric`` the runs' task tagged (one for all of them)."""
    if metric is None:
        column = col.tag(schema.PRIMARY_METRIC)
        metrics = set(runs[column].dropna()) if column in runs else set()
        if len(metrics) != 1:
            found = f"rank by different metrics {sorted(metrics)}" if metrics else "name no metric"
            raise UserError(
                f"the runs' {schema.PRIMARY_METRIC} tags {found}; select one data set "
                "(data=NAME) or give metric=NAME"
            )
        metric = metrics.pop()
    if col.metric(metric) not in runs:
        known = sorted(
            c.removeprefix(col.METRICS) for c in runs if c.startswith(col.metric(schema.TEST))
        )
        raise UserError(f"metric={metric} was not logged by these runs; choose from {known}")
    return metric


def metric_specs(runs: pd.DataFrame) -> list[MetricSpec]:
    """The task metric specs the runs carry (tag ``metric_specs``), each name once."""
    column = col.tag(schema.METRIC_SPECS)
    found: dict[str, MetricSpec] = {}
    for text in runs[column].dropna().unique() if column in runs else []:
        for spec in specs_from_json(text):
            found.setdefault(spec.name, spec)
    return list(found.values())


def metric_direction(runs: pd.DataFrame, metric: str) -> bool:
    """``higher_is_better`` of ``metric``: from the runs' specs, else from its area
    (``latency/ms``, ``size`` lower; speedups higher)."""
    spec = next((s for s in metric_specs(runs) if s.name == metric), None)
    direction = spec.higher_is_better if spec else measured_direction(metric)
    if direction is None:
        raise UserError(
            f"the runs do not say whether higher or lower {metric} is better; give "
            "higher_is_better=true|false"
        )
    return direction


def headline_metrics(runs: pd.DataFrame, metric: str) -> list[str]:
    """The headline task metrics of the runs' specs, the ranking metric left out."""
    return [s.name for s in metric_specs(runs) if s.headline and s.name != metric]


def with_ratios(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Add ``metrics.vs_baseline/{size_ratio,speedup_bs1,speedup_bsN,delta}`` per run: 1, 1, 1,
    0 for a baseline; the run's own logged values for a method run."""
    out = runs.copy()
    is_base = out[col.METHOD] == schema.BASELINE
    size_ratio = _metric(out, schema.SIZE_RATIO).fillna(_size_ratio_from_baseline(out))
    ratios = {
        col.VS_SIZE: (size_ratio, 1.0),
        col.VS_SPEEDUP_BS1: (_metric(out, schema.SPEEDUP_BS1), 1.0),
        col.VS_SPEEDUP_BSN: (_metric(out, schema.SPEEDUP_BSN), 1.0),
        col.VS_DELTA: (_metric(out, schema.delta_of(metric)), 0.0),
    }
    for name, (values, at_baseline) in ratios.items():
        out[col.metric(name)] = values.where(~is_base, at_baseline)
    return out


def aggregate(per_run: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and n of every board metric per row identity (ranked later
    against each row's own baseline, :func:`src.board.rank.rank_and_mark`).

    Returns:
        One row per data set, model and variant: identity columns, ``n``, ``folds``, ``seeds``,
        ``run_ids``, ``<metric>:mean``/``:std``/``:n`` for every metric of the board's areas.
    """
    metrics = sorted((c for c in per_run if _area(c) is not None), key=lambda c: (_area(c), c))
    groups = per_run.groupby(list(IDENTITY), sort=False, dropna=False)
    board = groups.agg(
        **{
            col.TASK: (col.TASK, "first"),
            col.METHOD: (col.METHOD, "first"),
            col.N_RUNS: (col.RUN_ID, "size"),
            col.FOLDS: (col.FOLD, _distinct),
            col.SEEDS: (col.SEED, _distinct),
            col.RUN_IDS: (col.RUN_ID, " ".join),
        }
    ).reset_index()
    stats = [_stats(groups, column) for column in metrics]
    return pd.concat([board, *stats], axis=1) if stats else board


def _stats(groups, column: str) -> pd.DataFrame:
    name = col.metric_name(column)
    values = groups[column]
    frame = pd.DataFrame(
        {
            col.stat(name, col.MEAN): values.mean(),
            col.stat(name, col.STD): values.std(ddof=1),
            col.stat(name, col.COUNT): values.count(),
        }
    )
    # An interval's ends also keep their widest value: a row of several runs shows the envelope.
    if name.endswith(schema.CI_LOW):
        frame[col.stat(name, col.MIN)] = values.min()
    elif name.endswith(schema.CI_HIGH):
        frame[col.stat(name, col.MAX)] = values.max()
    return frame.reset_index(drop=True)


def _metric(frame: pd.DataFrame, name: str) -> pd.Series:
    column = col.metric(name)
    return frame[column] if column in frame else pd.Series(np.nan, index=frame.index)


def _size_ratio_from_baseline(runs: pd.DataFrame) -> pd.Series:
    """``size/mb`` over that of the run's ``baseline_run_id`` (NaN when not loaded)."""
    column = col.tag(schema.BASELINE_RUN_ID)
    if column not in runs:
        return pd.Series(np.nan, index=runs.index)
    base_mb = _metric(runs, SIZE).set_axis(runs[col.RUN_ID])
    return _metric(runs, SIZE) / runs[column].map(base_mb)


def _area(column: str) -> int | None:
    """Position of the column's metric area in the board's areas (None: not a board metric)."""
    name = col.metric_name(column)
    areas = schema.BOARD_AREAS
    return next((i for i, area in enumerate(areas) if name and name.startswith(area)), None)


def _distinct(values: pd.Series) -> str:
    unique = sorted(set(values), key=lambda v: (len(v), v))
    return ",".join(unique)
