"""A variant against its baseline on the same units (test vehicles, test images).

- :func:`delong_paired`: DeLong's test for two correlated AUROCs (DeLong, DeLong and
  Clarke-Pearson 1988, in Sun and Xu's 2014 fast form): the difference, its standard error, a
  two-sided p-value and a normal interval.
- :func:`mcnemar_exact`: the exact McNemar test of two classifiers on the same images.
- :func:`paired_difference`: the mean difference over cells (folds x seeds) with a percentile
  bootstrap interval that resamples the *unit* (a vehicle, an image) jointly across cells, since
  one faulty vehicle sits in several folds' test sets; vehicles are resampled within their label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

STATISTICS = ("auroc", "accuracy")
_CHUNK = 250  # replicates per block: bounds the memory of (replicates x units) weights


def _psi(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """P x N kernel of the Mann-Whitney AUROC: 1 when the positive scores higher, 1/2 on a tie."""
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


@dataclass(frozen=True)
class DeLong:
    """DeLong's paired comparison of two AUROCs on the same cases (``variant - baseline``)."""

    auroc_baseline: float
    auroc_variant: float
    difference: float
    se: float
    p_value: float
    ci_low: float
    ci_high: float


def delong_paired(
    labels: np.ndarray, baseline: np.ndarray, variant: np.ndarray, ci: float = 0.95
) -> DeLong:
    """DeLong's test of ``AUROC(variant) - AUROC(baseline)`` on the same labelled cases.

    Args:
        labels: 0/1 per case (both classes present).
        baseline: The baseline's score per case (higher = more likely positive).
        variant: The variant's score per case.
        ci: Coverage of the normal interval of the difference.

    Raises:
        ValueError: One class only, or misaligned inputs.
    """
    y = np.asarray(labels).astype(bool)
    scores = [np.asarray(baseline, dtype=float), np.asarray(variant, dtype=float)]
    if any(s.shape != y.shape for s in scores) or y.ndim != 1:
        raise ValueError("labels, baseline and variant must be aligned 1-D arrays")
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 cases of each class, got {m} and {n}")
    kernels = [_psi(s[y], s[~y]) for s in scores]
    aucs = [k.mean() for k in kernels]
    v10 = np.stack([k.mean(axis=1) for k in kernels])  # per positive
    v01 = np.stack([k.mean(axis=0) for k in kernels])  # per negative
    s10, s01 = np.cov(v10), np.cov(v01)
    contrast = np.array([-1.0, 1.0])
    var = contrast @ s10 @ contrast / m + contrast @ s01 @ contrast / n
    diff, se = aucs[1] - aucs[0], math.sqrt(max(var, 0.0))
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = math.erfc(abs(diff) / se / math.sqrt(2))  # two-sided: 2 * P(Z > |z|)
    half = NormalDist().inv_cdf(0.5 + ci / 2) * se  # stdlib: the board needs no scipy
    return DeLong(float(aucs[0]), float(aucs[1]), float(diff), se, p, diff - half, diff + half)


def mcnemar_exact(baseline_correct: np.ndarray, variant_correct: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: of the discordant cases (one right, one wrong), is the
    split between the two classifiers further from even than chance allows?"""
    a = np.asarray(baseline_correct, dtype=bool)
    b = np.asarray(variant_correct, dtype=bool)
    only_base, only_variant = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_base + only_variant
    if discordant == 0:
        return 1.0
    k = min(only_base, only_variant)
    tail = sum(math.comb(discordant, i) for i in range(k + 1)) / 2**discordant
    return float(min(1.0, 2 * tail))


@dataclass(frozen=True)
class PairedCell:
    """One fold x seed: the same units scored (or judged) by the baseline and the variant.

    Attributes:
        units: Unit ids (vehicle ids, image indices); the same id in two cells is one unit.
        labels: 0/1 per unit (the strata of the AUROC bootstrap; unused for accuracy).
        baseline: The baseline's score (AUROC) or correctness 0/1 (accuracy) per unit.
        variant: The variant's, aligned.
    """

    units: np.ndarray
    labels: np.ndarray
    baseline: np.ndarray
    variant: np.ndarray


@dataclass(frozen=True)
class PairedEstimate:
    """The mean over cells of ``statistic(variant) - statistic(baseline)`` and its interval.

    Attributes:
        difference: Point estimate (mean over cells of the per-cell difference).
        ci_low: Lower percentile bound.
        ci_high: Upper percentile bound.
        n_cells: Cells (folds x seeds) averaged.
        n_units: Distinct units resampled.
        resampled: What was resampled, in words (for the report).
    """

    difference: float
    ci_low: float
    ci_high: float
    n_cells: int
    n_units: int
    resampled: str


def paired_difference(
    cells: Sequence[PairedCell],
    statistic: str,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> PairedEstimate:
    """Mean over ``cells`` of the variant's minus the baseline's ``statistic``, with a percentile
    bootstrap interval that resamples units jointly across cells.

    Each replicate draws every distinct unit a bootstrap count (within its label for
    ``auroc``, so both classes stay present) and recomputes each cell's weighted statistic for
    both models with the same counts: a unit that appears in several cells moves them together,
    as it should when folds share test vehicles.

    Args:
        cells: Paired units per fold x seed.
        statistic: ``auroc`` (scores, labels) or ``accuracy`` (0/1 correctness).
        n_boot: Replicates.
        ci: Coverage of the interval.
        seed: Seed of the resampling.

    Raises:
        ValueError: No cells, an unknown statistic, or a cell without both classes (auroc).
    """
    if not cells:
        raise ValueError("paired_difference needs at least one cell")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    units, labels, index = _units(cells)
    cell_stat = _auroc_differences if statistic == "auroc" else _accuracy_differences
    pairs = list(zip(cells, index, strict=True))

    def mean_over_cells(weights: np.ndarray) -> np.ndarray:
        draws = np.stack([cell_stat(cell, weights[:, idx]) for cell, idx in pairs])
        with np.errstate(invalid="ignore"):
            return np.nanmean(draws, axis=0)

    point = float(mean_over_cells(np.ones((1, len(units))))[0])
    rng = np.random.default_rng(seed)
    chunks = [min(_CHUNK, n_boot - start) for start in range(0, n_boot, _CHUNK)]
    means = np.concatenate(
        [mean_over_cells(_bootstrap_counts(labels, statistic, size, rng)) for size in chunks]
    )
    means = means[np.isfinite(means)]
    alpha = (1 - ci) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha]) if means.size else (np.nan, np.nan)
    within = "stratified by label, " if statistic == "auroc" else ""
    what = "vehicles" if statistic == "auroc" else "test units"
    resampled = f"{what} ({len(units)}, {within}jointly across {len(cells)} cells), {n_boot} draws"
    return PairedEstimate(point, float(low), float(high), len(cells), len(units), resampled)


def _units(cells: Sequence[PairedCell]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Distinct units with their labels, and each cell's positions into them."""
    ids = np.concatenate([np.asarray(c.units).astype(str) for c in cells])
    labels = np.concatenate([np.asarray(c.labels) for c in cells]).astype(int)
    units, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    bounds = np.cumsum([0, *(len(c.units) for c in cells)])
    index = [inverse[bounds[k] : bounds[k + 1]] for k in range(len(cells))]
    return units, labels[first], index


def _bootstrap_counts(labels: np.ndarray, statistic: str, n_boot: int, rng) -> np.ndarray:
    """(n_boot, n_units) multinomial counts; within each label for AUROC."""
    counts = np.zeros((n_boot, len(labels)))
    strata = [labels == 0, labels == 1] if statistic == "auroc" else [np.ones_like(labels, bool)]
    for members in strata:
        where = np.flatnonzero(members)
        if where.size:
            draws = rng.multinomial(where.size, np.full(where.size, 1 / where.size), size=n_boot)
            counts[:, where] = draws
    return counts


def _auroc_differences(cell: PairedCell, weights: np.ndarray) -> np.ndarray:
    """Weighted AUROC(variant) - AUROC(baseline) per row of ``weights`` (cell-aligned)."""
    y = np.asarray(cell.labels).astype(bool)
    if y.all() or not y.any():
        raise ValueError("every cell needs normal and faulty units for a paired AUROC")
    wp, wn = weights[:, y], weights[:, ~y]
    total = wp.sum(axis=1) * wn.sum(axis=1)
    out = []
    for scores in (np.asarray(cell.variant, float), np.asarray(cell.baseline, float)):
        kernel = _psi(scores[y], scores[~y])
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.einsum("bp,pn,bn->b", wp, kernel, wn) / total)
    return out[0] - out[1]


def _accuracy_differences(cell: PairedCell, weights: np.ndarray) -> np.ndarray:
    """Weighted accuracy(variant) - accuracy(baseline) per row of ``weights``."""
    gain = np.asarray(cell.variant, float) - np.asarray(cell.baseline, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights @ gain / weights.sum(axis=1)
