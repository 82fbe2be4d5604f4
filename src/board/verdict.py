"""One verdict per variant against its own baseline, with the error rate it carries.

The interval of a variant's difference from its baseline is recombined from its runs' per-unit
paired tables (``tables/paired_units.csv``: the same test vehicles or images scored by both
models in one process) over all its folds and seeds (:func:`src.stats.paired_difference`): for
one cell of AUROC a DeLong interval with a t quantile (the percentile bootstrap is
anti-conservative on 10 + 12 vehicles), for two or more cells the bootstrap that resamples each
unit jointly across them. Each bound is a one-sided test at ``alpha`` = 2.5 %.

With a non-inferiority margin ``m`` (the task's, e.g. 0.02 AUROC) the categories a reviewer
expects (:func:`verdict_of`): **superior** (the whole interval above 0), **non-inferior** (the
interval of the loss stays within ``m``), **non-inferior but worse** (within ``m``, yet wholly
below 0), **inconclusive**, **inferior** (wholly beyond ``m``), and **identical** when no
faulty/normal pair (no unit's answer) changed in any cell: a [0, 0] interval then shows no
variation, not its absence, and is never taken as non-inferiority. The family of variants judged
against one baseline is adjusted by Holm in its own column (:mod:`src.board.family`). Speed gets
its own verdict from the runs' side-by-side speedup intervals: **faster** when every run's
interval at batch 1 lies above 1, **slower** when every one lies below, **same** otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.family import holm_column, judged_counts
from src.core import schema
from src.core.metrics import MetricSpec
from src.stats import PairedCell, PairedEstimate, paired_difference, power_projection

SUPERIOR, NON_INFERIOR, NI_WORSE = "superior", "non-inferior", "non-inferior but worse"
INCONCLUSIVE, INFERIOR, IDENTICAL = "inconclusive", "inferior", "identical"
BASELINE = "baseline"
NO_INTERVAL = "no interval"
SHOWN_NON_INFERIOR = (SUPERIOR, NON_INFERIOR, NI_WORSE)  # what a Holm adjustment can take back
# Rank tiers: an identical variant proved nothing about detection, so it waits with the
# inconclusive ones (its fidelity verdict may still say it behaves like its baseline).
TIERS = {
    BASELINE: 0,
    SUPERIOR: 0,
    NON_INFERIOR: 0,
    NI_WORSE: 0,
    IDENTICAL: 1,
    INCONCLUSIVE: 1,
    NO_INTERVAL: 1,
    INFERIOR: 2,
}
DISCORDANCE = ("pairs_worse", "pairs_better", "pairs_total", "units_moved")  # logged per run
ALPHA = 0.025  # one-sided, per bound: the ends of a two-sided 95 % interval
SMALLER = 0.9  # a size ratio below this, without a speedup, is "smaller but not faster"


def tier_of(verdict: str) -> int:
    """Rank tier of a verdict (``identical on 22 units`` is an identical one)."""
    return 1 if verdict.startswith(IDENTICAL) else TIERS.get(verdict, 1)


TableSource = Callable[[str], pd.DataFrame | None]  # run id -> its paired table, or None


@dataclass
class Judgement:
    """How a board's verdicts were reached (:func:`src.board.meta.verdict_note` states it).

    Attributes:
        resampled: What the intervals resampled, in words (the first row's).
        methods: Every interval method used, in order of first use.
        alpha: One-sided alpha of each bound.
        k: The most variants judged against one baseline.
    """

    resampled: str = ""
    methods: list[str] = field(default_factory=list)
    alpha: float = ALPHA
    k: int = 0


def judge(
    rows: pd.DataFrame,
    per_run: pd.DataFrame,
    spec: MetricSpec | None,
    margin: float | None = None,
    tables: TableSource | None = None,
    n_boot: int = 2000,
) -> tuple[pd.DataFrame, Judgement]:
    """Add the interval (``delta:*``), how it was made, ``p_ni``, the discordance counts,
    ``verdict``, ``k judged``, ``verdict (Holm)``, ``power``, ``speed`` and ``reason`` to every
    row; return the rows and how the verdicts were reached.

    Args:
        rows: Aggregated board rows (one per variant).
        per_run: The runs behind them (``run_ids`` of a row name them).
        spec: The ranking metric's spec (direction, paired statistic, margin).
        margin: Non-inferiority margin; None: the spec's.
        tables: ``tables(run_id)`` gives a run's paired per-unit table, None when it has none.
        n_boot: Bootstrap replicates of a recombined interval (two or more cells).
    """
    rows = rows.copy()
    margin = margin if margin is not None else (spec.margin if spec else None)
    higher = spec.higher_is_better if spec else True
    by_id = per_run.set_index(col.RUN_ID)
    how = Judgement()
    facts = []
    for _, row in rows.iterrows():
        runs = by_id.loc[row[col.RUN_IDS].split()]
        found, cells = _interval(row, runs, spec, tables, n_boot, margin)
        facts.append(_facts(found, cells, margin, spec.paired if spec else None))
        if found.get(col.INTERVAL) and found[col.INTERVAL] not in how.methods:
            how.methods.append(found[col.INTERVAL])
        how.resampled = how.resampled or found.pop("resampled", "")
    rows = pd.concat([rows, pd.DataFrame(facts, index=rows.index)], axis=1)
    rows[col.VERDICT] = [verdict_of(r, margin, higher) for _, r in rows.iterrows()]
    rows[col.FAMILY_K] = judged_counts(rows)
    rows[col.VERDICT_HOLM] = holm_column(rows, ALPHA, SHOWN_NON_INFERIOR, INCONCLUSIVE)
    rows.loc[~rows[col.VERDICT].isin([INCONCLUSIVE]), col.POWER] = ""
    rows[col.SPEED] = [speed_verdict(by_id.loc[r.split()]) for r in rows[col.RUN_IDS]]
    rows[col.REASON] = [_reason(r, margin) for _, r in rows.iterrows()]
    how.k = int(rows[col.FAMILY_K].max()) if len(rows) else 0
    return rows, how


def _interval(row, runs, spec, tables, n_boot, margin) -> tuple[dict, list]:
    """The row's paired estimate (as columns) and the cells it came from."""
    if row[col.METHOD] == schema.BASELINE or spec is None or spec.paired is None:
        return {}, []
    cells = [cell_of(tables(run_id)) for run_id in runs.index] if tables else []
    if cells and all(cell is not None for cell in cells):
        est = paired_difference(
            cells, spec.paired, n_boot=n_boot, margin=margin, higher_is_better=spec.higher_is_better
        )
        return _estimate_columns(est), cells
    if len(runs) == 1:  # a run logged before its table was kept: its own interval
        return _logged_columns(runs.iloc[0], spec), []
    return {}, []


def judge_table(
    table: pd.DataFrame,
    statistic: str,
    margin: float,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
    seed: int = 0,
) -> tuple[str, PairedEstimate]:
    """One variant's verdict from its paired table, each bound a one-sided ``alpha`` test: a
    confirmatory look at the variant a search chose (``alpha``), or the best of ``k`` looked at
    on test (``alpha / k``, Bonferroni)."""
    est = paired_difference(
        [cell_of(table)],
        statistic,
        ci=1 - 2 * alpha,
        seed=seed,
        margin=margin,
        higher_is_better=higher_is_better,
    )
    row = {col.METHOD: "variant", **_estimate_columns(est), col.N_UNITS: float(est.n_units)}
    return verdict_of(row, margin, higher_is_better), est


def _estimate_columns(est: PairedEstimate) -> dict:
    d = est.discordance
    counts = (d.worse, d.better, d.total, d.units_moved)
    return {
        col.DELTA_ESTIMATE: est.difference,
        col.DELTA_CI_LOW: est.ci_low,
        col.DELTA_CI_HIGH: est.ci_high,
        col.INTERVAL: est.method,
        col.P_NI: est.p_ni,
        **dict(zip(col.DISCORDANCE, counts, strict=True)),
        "resampled": est.resampled,
    }


def _logged_columns(run: pd.Series, spec: MetricSpec) -> dict:
    """The run's own paired interval and counts, as its task logged them."""
    delta = schema.delta_of(spec.name)
    names = {
        col.DELTA_ESTIMATE: delta,
        col.DELTA_CI_LOW: schema.interval(delta)[0],
        col.DELTA_CI_HIGH: schema.interval(delta)[1],
        col.P_NI: schema.paired_metric(delta, "p_ni"),
    }
    pairs = zip(col.DISCORDANCE, DISCORDANCE, strict=True)
    names.update({column: schema.paired_metric(delta, key) for column, key in pairs})
    found = {key: float(run.get(col.metric(name), np.nan)) for key, name in names.items()}
    found[col.INTERVAL] = "the run's own paired interval over its test units"
    found["resampled"] = found[col.INTERVAL]
    return found


def _facts(found: dict, cells: list, margin: float | None, statistic: str | None) -> dict:
    """The estimate's columns, the units it rests on, and the power line of an AUROC row."""
    names = (*col.DELTA_INTERVAL, col.P_NI, *col.DISCORDANCE)
    out = {name: found.get(name, np.nan) for name in names}
    out[col.INTERVAL] = found.get(col.INTERVAL, "")
    out[col.N_UNITS], out[col.N_POSITIVE] = _unit_counts(cells, statistic == "auroc")
    out[col.POWER] = ""
    if cells and margin is not None and statistic == "auroc":
        try:
            out[col.POWER] = power_projection(cells, margin, alpha=ALPHA).text
        except ValueError:  # too few units to split the variance: say nothing, not a guess
            out[col.POWER] = ""
    return out


def _unit_counts(cells: list, binary: bool) -> tuple[float, float]:
    """Distinct units over the cells, and of them those labelled 1 when the labels are the
    two classes of an AUROC (a unit id is one unit)."""
    if not cells:
        return np.nan, np.nan
    units = pd.DataFrame(
        {
            "unit": np.concatenate([np.asarray(c.units).astype(str) for c in cells]),
            "label": np.concatenate([np.asarray(c.labels) for c in cells]).astype(int),
        }
    ).drop_duplicates("unit")
    return float(len(units)), float(units.label.sum()) if binary else np.nan


def cell_of(table: pd.DataFrame | None) -> PairedCell | None:
    """A paired table (unit, label, baseline, variant) as a cell; None for no table."""
    if table is None:
        return None
    return PairedCell(*(table[c].to_numpy() for c in ("unit", "label", "baseline", "variant")))


def verdict_of(row, margin: float | None, higher_is_better: bool) -> str:
    """The category of a row's interval (``delta:ci_low``/``_high``) at ``margin``; ``identical``
    when its discordance counts show no changed pair."""
    if row[col.METHOD] == schema.BASELINE:
        return BASELINE
    low, high = row[col.DELTA_CI_LOW], row[col.DELTA_CI_HIGH]
    if margin is None or not (np.isfinite(low) and np.isfinite(high)):
        return NO_INTERVAL
    if _unchanged(row):
        units = row.get(col.N_UNITS, np.nan)
        return f"{IDENTICAL} on {units:.0f} units" if np.isfinite(units) else IDENTICAL
    if not higher_is_better:  # a loss is then an increase: look at the mirrored interval
        low, high = -high, -low
    if high < -margin:
        return INFERIOR
    if low <= -margin:
        return INCONCLUSIVE
    if low > 0:
        return SUPERIOR
    return NI_WORSE if high < 0 else NON_INFERIOR


def _unchanged(row) -> bool:
    worse, better = row.get(col.PAIRS_WORSE, np.nan), row.get(col.PAIRS_BETTER, np.nan)
    if np.isfinite(worse) and np.isfinite(better):
        return worse == 0 and better == 0
    return row[col.DELTA_CI_LOW] == row[col.DELTA_CI_HIGH] == 0  # counts not logged: no spread


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
    parts = [row[col.VERDICT] + _evidence(row, margin)]
    speedup = row.get(col.stat(col.VS_SPEEDUP_BS1), np.nan)
    if np.isfinite(speedup):
        parts.append(_speed_words(row[col.SPEED], speedup))
    size = row.get(col.stat(col.VS_SIZE), np.nan)
    if np.isfinite(size):
        parts.append(f"{size:.2g}x size")
        if size < SMALLER and row[col.SPEED] in ("same", "slower"):
            parts.append("smaller but not faster")
    if row.get(col.POWER):
        parts.append(f"power: {row[col.POWER]}")
    return ", ".join(parts)


def _evidence(row, margin: float | None) -> str:
    """``(Δ -0.004 [-0.015, +0.008], margin 0.02, DeLong-t ..., p_NI 0.01; Holm: ...)``."""
    estimate, low, high = (row[name] for name in col.DELTA_INTERVAL)
    if not np.isfinite(low):
        return ""
    if row[col.VERDICT].startswith(IDENTICAL):
        return f" ({identical_words(row)})"
    words = f"Δ {estimate:+.3f} [{low:+.3f}, {high:+.3f}], margin {margin:g}"
    if row.get(col.INTERVAL):
        words += f", {row[col.INTERVAL]}"
    if np.isfinite(row.get(col.P_NI, np.nan)):
        words += f", p_NI {row[col.P_NI]:.2g}"
    holm = row.get(col.VERDICT_HOLM, "")
    if holm and holm != row[col.VERDICT]:
        words += f"; Holm over {row[col.FAMILY_K]}: {holm}"
    return f" ({words})"


def identical_words(row) -> str:
    """What no changed pair can and cannot show: the exact bound (one-sided 97.5 %
    Clopper-Pearson) on the share of faulty units (of all units, for accuracy) that the variant
    could affect without one of them showing."""
    from src.stats.proportion import cp_upper

    total = row.get(col.PAIRS_TOTAL, np.nan)
    pairs = f"0/{total:.0f} pairs reordered" if np.isfinite(total) else "no pair reordered"
    words = f"{pairs}; no interval possible"
    exposed = row.get(col.N_POSITIVE, np.nan)
    what = "faulty units"
    if not np.isfinite(exposed) or exposed == 0:
        exposed, what = row.get(col.N_UNITS, np.nan), "units"
    if np.isfinite(exposed) and exposed > 0:
        bound = cp_upper(0, int(exposed))
        words += f"; up to {bound:.0%} of the {exposed:.0f} {what} could be affected unseen"
    return words


def _speed_words(speed: str, speedup: float) -> str:
    """``3.9x faster at bs1``; a speed without a verdict (no interval logged) says so."""
    if speed == "faster":
        return f"{speedup:.2g}x faster at bs1"
    if speed == "slower":
        return f"{1 / speedup:.2g}x slower at bs1"
    if speed == "same":
        return f"not faster at bs1 ({speedup:.2g}x)"
    return f"{speedup:.2g}x at bs1 (no interval)"
