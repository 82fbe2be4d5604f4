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
    by_id = per_run.set_index("run_id")
    resampled, estimates = "", []
    for _, row in rows.iterrows():
        runs = by_id.loc[row["run_ids"].split()]
        estimate, how = _interval(row, runs, spec, tables, n_boot)
        resampled = resampled or how
        estimates.append(estimate)
    rows[["delta:estimate", "delta:ci_low", "delta:ci_high"]] = np.array(estimates, dtype=float)
    higher = spec.higher_is_better if spec else True
    rows["verdict"] = [verdict_of(r, margin, higher) for _, r in rows.iterrows()]
    rows["speed"] = [speed_verdict(by_id.loc[r.split()]) for r in rows["run_ids"]]
    rows["reason"] = [_reason(r, margin) for _, r in rows.iterrows()]
    return rows, resampled


def _interval(row, runs: pd.DataFrame, spec, tables, n_boot) -> tuple[tuple, str]:
    """(estimate, low, high) of the row's difference from its baseline, and how it was made."""
    if row["method"] == schema.BASELINE or spec is None or spec.paired is None:
        return (np.nan, np.nan, np.nan), ""
    cells = [_cell(tables(run_id)) for run_id in runs.index] if tables else []
    if cells and all(cell is not None for cell in cells):
        est = paired_difference(cells, spec.paired, n_boot=n_boot)
        return (est.difference, est.ci_low, est.ci_high), est.resampled
    if len(runs) == 1:  # a run logged before its table was kept: its own interval
        delta = schema.delta_of(spec.name)
        values = [runs.get(f"metrics.{delta}{end}", pd.Series([np.nan])).iloc[0]
                  for end in ("", "_ci_low", "_ci_high")]  # fmt: skip
        return tuple(values), "the run's own paired bootstrap over its test units"
    return (np.nan, np.nan, np.nan), ""


def _cell(table: pd.DataFrame | None) -> PairedCell | None:
    if table is None:
        return None
    return PairedCell(table["unit"].to_numpy(), table["label"].to_numpy(),
                      table["baseline"].to_numpy(), table["variant"].to_numpy())  # fmt: skip


def verdict_of(row, margin: float | None, higher_is_better: bool) -> str:
    if row["method"] == schema.BASELINE:
        return BASELINE
    low, high = row["delta:ci_low"], row["delta:ci_high"]
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
    low = runs.get(f"metrics.{key}_ci_low")
    high = runs.get(f"metrics.{key}_ci_high")
    if low is None or high is None or low.isna().any() or high.isna().any():
        return "—" if (runs["method"] != schema.BASELINE).any() else ""
    if (low > 1).all():
        return "faster"
    if (high < 1).all():
        return "slower"
    return "same"


def _reason(row, margin: float | None) -> str:
    """One line a reader can act on: the verdict with its interval, then speed and size."""
    if row["verdict"] == BASELINE:
        return "the fp32 model every variant is compared with"
    parts = [row["verdict"]]
    if np.isfinite(row["delta:ci_low"]):
        parts[0] += (f" (Δ {row['delta:estimate']:+.3f} [{row['delta:ci_low']:+.3f}, "
                     f"{row['delta:ci_high']:+.3f}], margin {margin:g})")  # fmt: skip
    speedup = row.get("vs_baseline/speedup_bs1:mean", np.nan)
    if np.isfinite(speedup):
        parts.append(_speed_words(row["speed"], speedup))
    size = row.get("vs_baseline/size_ratio:mean", np.nan)
    if np.isfinite(size):
        parts.append(f"{size:.2g}x size")
        if size < SMALLER and row["speed"] in ("same", "slower"):
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
