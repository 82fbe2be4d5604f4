"""One verdict per variant against its own baseline: non-inferior, inferior or inconclusive.

The interval of a variant's difference from its baseline is recombined from its runs' per-unit
paired tables (``tables/paired_units.csv``: the same test vehicles or images scored by both
models in one process) over all its folds and seeds, resampling the unit jointly across them
(:func:`src.stats.paired_difference`). With a non-inferiority margin ``m`` (the task's, e.g. 0.02
AUROC): **non-inferior** when the whole interval of the loss stays within ``m``, **inferior**
when it lies wholly beyond, **inconclusive** otherwise. Speed gets its own verdict from the
runs' side-by-side speedup intervals: **faster** when every run's interval at batch 1 lies above
1, **slower** when every one lies below, **same** otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from src.board import columns as col
from src.core import schema
from src.core.metrics import MetricSpec
from src.stats import PairedCell, paired_difference

NON_INFERIOR, INCONCLUSIVE, INFERIOR = "non-inferior", "inconclusive", "inferior"
BASELINE = "baseline"
NO_INTERVAL = "no interval"
TIERS = {BASELINE: 0, NON_INFERIOR: 0, INCONCLUSIVE: 1, NO_INTERVAL: 1, INFERIOR: 2}
SMALLER = 0.9  # a size ratio below this, without a speedup, is "smaller but not faster"

TableSource = Callable[[str], pd.DataFrame | None]  # run id -> its paired table, or None


def judge(
    rows: pd.DataFrame,
    per_run: pd.DataFrame,
    spec: MetricSpec | None,
    margin: float | None = None,
    tables: TableSource | None = None,
    n_boot: int = 2000,
) -> tuple[pd.DataFrame, str]:
    """Add ``delta:estimate``, ``delta:ci_low``, ``delta:ci_high``, ``verdict``, ``speed``
    and ``reason`` to every row; return the rows and what was resampled, in words.

    Args:
        rows: Aggregated board rows (one per variant).
        per_run: The runs behind them (``run_ids`` of a row name them).
        spec: The ranking metric's spec (direction, paired statistic, margin).
        margin: Non-inferiority margin; None: the spec's.
        tables: ``tables(run_id)`` gives a run's paired per-unit table, None when it has none.
        n_boot: Bootstrap replicates of the recombined interval.
    """
    rows = rows.copy()
    margin = margin if margin is not None else (spec.margin if spec else None)
    by_id = per_run.set_index(col.RUN_ID)
    resampled, estimates = "", []
    for _, row in rows.iterrows():
        runs = by_id.loc[row[col.RUN_IDS].split()]
        estimate, how = _interval(row, runs, spec, tables, n_boot)
        resampled = resampled or how
        estimates.append(estimate)
    rows[list(col.DELTA_INTERVAL)] = np.array(estimates, dtype=float)
    higher = spec.higher_is_better if spec else True
    rows[col.VERDICT] = [verdict_of(r, margin, higher) for _, r in rows.iterrows()]
    rows[col.SPEED] = [speed_verdict(by_id.loc[r.split()]) for r in rows[col.RUN_IDS]]
    rows[col.REASON] = [_reason(r, margin) for _, r in rows.iterrows()]
    return rows, resampled


def _interval(row, runs: pd.DataFrame, spec, tables, n_boot) -> tuple[tuple, str]:
    """(estimate, low, high) of the row's difference from its baseline, and how it was made."""
    if row[col.METHOD] == schema.BASELINE or spec is None or spec.paired is None:
        return (np.nan, np.nan, np.nan), ""
    cells = [_cell(tables(run_id)) for run_id in runs.index] if tables else []
    if cells and all(cell is not None for cell in cells):
        est = paired_difference(cells, spec.paired, n_boot=n_boot)
        return (est.difference, est.ci_low, est.ci_high), est.resampled
    if len(runs) == 1:  # a run logged before its table was kept: its own interval
        delta = schema.delta_of(spec.name)
        names = (delta, *schema.interval(delta))
        values = [runs.get(col.metric(name), pd.Series([np.nan])).iloc[0] for name in names]
        return tuple(values), "the run's own paired bootstrap over its test units"
    return (np.nan, np.nan, np.nan), ""


def _cell(table: pd.DataFrame | None) -> PairedCell | None:
    if table is None:
        return None
    return PairedCell(*(table[c].to_numpy() for c in ("unit", "label", "baseline", "variant")))


def verdict_of(row, margin: float | None, higher_is_better: bool) -> str:
    if row[col.METHOD] == schema.BASELINE:
        return BASELINE
    low, high = row[col.DELTA_CI_LOW], row[col.DELTA_CI_HIGH]
    if margin is None or not (np.isfinite(low) and np.isfinite(high)):
        return NO_INTERVAL
    if not higher_is_better:  # a loss is then an increase: look at the mirrored interval
        low, high = -high, -low
    if low > -margin:
        return NON_INFERIOR
    if high < -margin:
        return INFERIOR
    return INCONCLUSIVE


def speed_verdict(runs: pd.DataFrame, key: str = schema.SPEEDUP_BS1) -> str:
    """faster / slower / same at batch 1 from every run's side-by-side interval of ``key``."""
    low, high = (runs.get(col.metric(name)) for name in schema.interval(key))
    if low is None or high is None or low.isna().any() or high.isna().any():
        return "—" if (runs[col.METHOD] != schema.BASELINE).any() else ""
    if (low > 1).all():
        return "faster"
    if (high < 1).all():
        return "slower"
    return "same"


def _reason(row, margin: float | None) -> str:
    """One line a reader can act on: the verdict with its interval, then speed and size."""
    if row[col.VERDICT] == BASELINE:
        return "the fp32 model every variant is compared with"
    parts = [row[col.VERDICT]]
    estimate, low, high = (row[name] for name in col.DELTA_INTERVAL)
    if np.isfinite(low):
        parts[0] += f" (Δ {estimate:+.3f} [{low:+.3f}, {high:+.3f}], margin {margin:g})"
    speedup = row.get(col.stat(col.VS_SPEEDUP_BS1), np.nan)
    if np.isfinite(speedup):
        parts.append(_speed_words(row[col.SPEED], speedup))
    size = row.get(col.stat(col.VS_SIZE), np.nan)
    if np.isfinite(size):
        parts.append(f"{size:.2g}x size")
        if size < SMALLER and row[col.SPEED] in ("same", "slower"):
            parts.append("smaller but not faster")
    return ", ".join(parts)


def _speed_words(speed: str, speedup: float) -> str:
    """``3.9x faster at bs1``; a speed without a verdict (no interval logged) says so."""
    if speed == "faster":
        return f"{speedup:.2g}x faster at bs1"
    if speed == "slower":
        return f"{1 / speedup:.2g}x slower at bs1"
    if speed == "same":
        return f"not faster at bs1 ({speedup:.2g}x)"
    return f"{speedup:.2g}x at bs1 (no interval)"
