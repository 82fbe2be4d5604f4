"""A variant against its baseline on the same units (test vehicles, test images): the mean
difference over cells (folds x seeds), its interval, and a one-sided non-inferiority p-value.

Which interval, by design (each result names it in ``method`` and ``resampled``):

- one AUROC cell: DeLong's standard error with a Student t quantile, ``df = min(P, N) - 1``. At 10
  faulty + 12 normal vehicles the percentile bootstrap's one-sided error is about 3x nominal and
  the normal (Wald) DeLong interval's about 1.5x; the t quantile is calibrated (audit D2).
- one accuracy cell: the adjusted Wald interval of a paired proportion difference (Bonett and
  Price 2012: one pseudo-count added to each discordant cell, z quantile), from the discordant
  counts alone, fine at thousands of images.
- two or more cells: the joint stratified percentile bootstrap (:mod:`src.stats.bootstrap`).

When no pair changed in any cell the interval is ``[0, 0]`` and ``p_ni`` is nan: the data show
no change, which is no evidence of a small one (:class:`src.stats.discordance.Discordance`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from src.stats.bootstrap import joint_bootstrap
from src.stats.cells import PairedCell, check_statistic, units_of
from src.stats.delong import delong_paired, t_quantile, t_sf
from src.stats.discordance import Discordance, discordance

NEAR_MARGIN = 0.002  # a bootstrap bound this close to the margin is redrawn with more draws
REDRAW = 5  # ... with this many times the replicates


@dataclass(frozen=True)
class PairedEstimate:
    """The mean over cells of ``statistic(variant) - statistic(baseline)`` and its interval.

    Attributes:
        difference: Point estimate (mean over cells of the per-cell difference).
        ci_low: Lower bound of the two-sided ``ci`` interval.
        ci_high: Upper bound.
        n_cells: Cells (folds x seeds) averaged.
        n_units: Distinct units.
        resampled: What was resampled (or that nothing was, and why), in words.
        method: The interval, in words (``DeLong-t (df=9)``, ``percentile bootstrap (2000
            draws)``).
        alpha: One-sided error of each bound, ``(1 - ci) / 2``.
        p_ni: One-sided non-inferiority p-value at ``margin`` (nan without a margin, and when
            no pair changed); ``p_ni < alpha`` exactly when the bound beats the margin (closed
            forms; the bootstrap up to its discreteness).
        discordance: The pairs the variant changed, summed over cells.
        nan_replicates: Bootstrap cell-replicates that lost a class and were left out (0 for
            the closed forms).
        mc_se: Monte Carlo standard error of the bound compared with the margin (the lower one
            when higher is better; 0 for the closed forms, nan if unknown).
        draws: The bootstrap replicates of the mean difference (None for the closed forms).
    """

    difference: float
    ci_low: float
    ci_high: float
    n_cells: int
    n_units: int
    resampled: str
    method: str
    alpha: float
    p_ni: float
    discordance: Discordance
    nan_replicates: int
    mc_se: float
    draws: np.ndarray | None = None


def paired_difference(
    cells: Sequence[PairedCell],
    statistic: str,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    margin: float | None = None,
    higher_is_better: bool = True,
) -> PairedEstimate:
    """Mean over ``cells`` of the variant's minus the baseline's ``statistic``, its interval and
    its non-inferiority p-value (the interval is chosen as the module docstring says).

    Args:
        cells: Paired units per fold x seed.
        statistic: ``auroc`` (scores, labels) or ``accuracy`` (0/1 correctness).
        n_boot: Bootstrap replicates (several cells).
        ci: Coverage of the two-sided interval; each bound is a one-sided ``(1 - ci) / 2`` test.
        seed: Seed of the resampling.
        margin: Non-inferiority margin (> 0), or None for no p_ni.
        higher_is_better: The statistic's direction (a loss is then ``difference < 0``).

    Raises:
        ValueError: No cells, an unknown statistic, a cell without both classes (auroc), or a
            unit with two labels.
    """
    check_statistic(cells, statistic)
    units, labels, index = units_of(cells)
    changed = discordance(cells, statistic)
    common = {"n_cells": len(cells), "n_units": len(units), "discordance": changed}
    alpha = round((1 - ci) / 2, 12)  # 0.025, not 0.025000000000000022
    if changed.identical:
        return _identical(common, alpha, statistic)
    sign = 1.0 if higher_is_better else -1.0
    if len(cells) == 1 and statistic == "auroc" and min(_class_sizes(cells[0])) >= 2:
        return _delong_t(cells[0], alpha, margin, sign, common)
    if len(cells) == 1 and statistic == "accuracy":
        return _paired_proportion(changed, alpha, margin, sign, common)
    return _bootstrap(cells, statistic, labels, index, n_boot, seed, alpha, margin, sign, common)


def _class_sizes(cell: PairedCell) -> tuple[int, int]:
    y = np.asarray(cell.labels).astype(bool)
    return int(y.sum()), int((~y).sum())


def _identical(common: dict, alpha: float, statistic: str) -> PairedEstimate:
    what = "pairs" if statistic == "auroc" else "units"
    words = f"none: no {what} changed in any cell, so no interval is possible"
    return PairedEstimate(
        0.0,
        0.0,
        0.0,
        resampled=words,
        method="identical (no interval)",
        alpha=alpha,
        p_ni=math.nan,
        nan_replicates=0,
        mc_se=0.0,
        **common,
    )


def _closed_form(diff, se, quantile, tail, margin, sign) -> tuple[float, float, float]:
    """(low, high, p_ni) of ``diff +- quantile * se``; ``tail(x) = P(T > x)``."""
    if se == 0:  # degenerate spread with changed pairs: a point, and no test (audit D7)
        return diff, diff, math.nan
    p_ni = math.nan if margin is None else tail((sign * diff + margin) / se)
    return diff - quantile * se, diff + quantile * se, p_ni


def _delong_t(cell, alpha, margin, sign, common) -> PairedEstimate:
    test = delong_paired(cell.labels, cell.baseline, cell.variant)
    df = test.df
    low, high, p_ni = _closed_form(
        test.difference, test.se, t_quantile(1 - alpha, df), lambda x: t_sf(x, df), margin, sign
    )
    what = f"none: DeLong's standard error on {test.n_pos} faulty + {test.n_neg} normal units"
    return PairedEstimate(
        test.difference,
        low,
        high,
        resampled=f"{what}, t quantile (df={df}), one cell",
        method=f"DeLong-t (df={df})",
        alpha=alpha,
        p_ni=p_ni,
        nan_replicates=0,
        mc_se=0.0,
        **common,
    )


def _paired_proportion(changed: Discordance, alpha, margin, sign, common) -> PairedEstimate:
    """Bonett-Price adjusted Wald: p12 = (worse + 1)/(n + 2), p21 = (better + 1)/(n + 2)."""
    n = changed.total
    worse, better = (changed.worse + 1) / (n + 2), (changed.better + 1) / (n + 2)
    centre = better - worse
    se = math.sqrt(max(worse + better - centre**2, 0.0) / (n + 2))
    z = NormalDist()
    low, high, p_ni = _closed_form(
        centre, se, z.inv_cdf(1 - alpha), lambda x: 1 - z.cdf(x), margin, sign
    )
    what = f"none: {changed.worse:.0f} + {changed.better:.0f} discordant of {n:.0f} units"
    return PairedEstimate(
        (changed.better - changed.worse) / n,
        low,
        high,
        resampled=f"{what}, adjusted Wald (Bonett-Price), one cell",
        method="paired-proportion adjusted Wald (z)",
        alpha=alpha,
        p_ni=p_ni,
        nan_replicates=0,
        mc_se=0.0,
        **common,
    )


def _bootstrap(cells, statistic, labels, index, n_boot, seed, alpha, margin, sign, common):
    draws = joint_bootstrap(cells, statistic, labels, index, n_boot, seed)
    if margin is not None and draws.means.size:
        bound = np.quantile(sign * draws.means, alpha)
        if abs(bound + margin) < NEAR_MARGIN:  # too close to call on n_boot draws: more
            n_boot *= REDRAW
            draws = joint_bootstrap(cells, statistic, labels, index, n_boot, seed + 1)
    means = draws.means
    low, high = np.quantile(means, [alpha, 1 - alpha]) if means.size else (math.nan,) * 2
    p_ni = math.nan
    if margin is not None and means.size:
        p_ni = (1 + int(np.sum(sign * means <= -margin))) / (means.size + 1)
    mc_se = quantile_mc_se(sign * means, alpha)
    method = f"percentile bootstrap ({n_boot} draws"
    if draws.nan_replicates:  # a cell that lost a class in a replicate left that mean
        method += f", {draws.nan_replicates} cell draws lost a class"
    if margin is not None and means.size:  # still too close after the redraw: say how close
        if abs(np.quantile(sign * means, alpha) + margin) < NEAR_MARGIN:
            method += f", bound within {NEAR_MARGIN:g} of the margin: Monte Carlo se {mc_se:.4f}"
    within = "stratified by label, " if statistic == "auroc" else ""
    what = "vehicles" if statistic == "auroc" else "test units"
    resampled = (
        f"{what} ({common['n_units']}, {within}jointly across {len(cells)} cells), "
        f"{n_boot} draws, percentile bootstrap"
    )
    return PairedEstimate(
        draws.point,
        float(low),
        float(high),
        resampled=resampled,
        method=method + ")",
        alpha=alpha,
        p_ni=p_ni,
        nan_replicates=draws.nan_replicates,
        mc_se=mc_se,
        draws=means,
        **common,
    )


def quantile_mc_se(draws: np.ndarray, q: float) -> float:
    """Monte Carlo standard error of the ``q`` quantile of ``draws``, distribution-free.

    The number of draws below the true quantile is Binomial(B, q), with standard deviation
    ``s = sqrt(B q (1 - q))``; half the distance between the order statistics ``s`` ranks either
    side of ``B q`` is the SE ``sqrt(q (1 - q) / B) / density`` with the density read off the
    draws themselves (no kernel estimate). nan with fewer than 2 draws.
    """
    if draws.size < 2:
        return math.nan
    ordered = np.sort(draws)
    spread = math.sqrt(draws.size * q * (1 - q))
    ranks = np.clip(np.rint([draws.size * q - spread, draws.size * q + spread]), 0, draws.size - 1)
    return float((ordered[int(ranks[1])] - ordered[int(ranks[0])]) / 2)
