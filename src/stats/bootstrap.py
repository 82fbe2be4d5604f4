"""The joint stratified bootstrap of a mean paired difference over cells (folds x seeds).

Each replicate draws every distinct unit a bootstrap count (within its label for ``auroc``, so
both classes stay present overall) and recomputes each cell's weighted statistic for both models
with the same counts: a unit that appears in several cells moves them together, as it should when
folds share test vehicles. A cell can still lose a class in a replicate (its faulty vehicles all
drawn zero times); that cell-replicate is nan and left out of that replicate's mean, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src.stats.cells import PairedCell, split_classes
from src.stats.delong import psi

_CHUNK = 250  # replicates per block: bounds the memory of (replicates x units) weights


@dataclass(frozen=True)
class Draws:
    """Bootstrap replicates of the mean difference over cells.

    Attributes:
        point: The mean over cells of the per-cell difference (all weights 1).
        means: The finite replicates (a replicate where every cell lost a class is dropped).
        nan_replicates: Cell-replicates that lost a class and were left out of their mean.
    """

    point: float
    means: np.ndarray
    nan_replicates: int


def joint_bootstrap(
    cells: Sequence[PairedCell],
    statistic: str,
    labels: np.ndarray,
    index: list[np.ndarray],
    n_boot: int,
    seed: int,
) -> Draws:
    """``n_boot`` replicates of the mean over ``cells`` of ``statistic(variant - baseline)``.

    Args:
        cells: Paired units per fold x seed.
        statistic: ``auroc`` or ``accuracy``.
        labels: Label per distinct unit (:func:`src.stats.cells.units_of`).
        index: Each cell's positions into the distinct units.
        n_boot: Replicates.
        seed: Seed of the resampling.
    """
    cell_stat = _auroc_differences if statistic == "auroc" else _accuracy_differences
    pairs = list(zip(cells, index, strict=True))

    def per_cell(weights: np.ndarray) -> np.ndarray:  # cells x replicates
        return np.stack([cell_stat(cell, weights[:, idx]) for cell, idx in pairs])

    point = float(per_cell(np.ones((1, len(labels)))).mean())
    rng = np.random.default_rng(seed)
    blocks = [min(_CHUNK, n_boot - start) for start in range(0, n_boot, _CHUNK)]
    draws = np.concatenate(
        [per_cell(_counts(labels, statistic, size, rng)) for size in blocks], axis=1
    )
    lost = np.isnan(draws)
    kept = (~lost).sum(axis=0)
    means = np.where(lost, 0.0, draws).sum(axis=0) / np.maximum(kept, 1)
    return Draws(point, means[kept > 0], int(lost.sum()))


def _counts(labels: np.ndarray, statistic: str, n_boot: int, rng) -> np.ndarray:
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
    y, pos, neg = split_classes(cell)
    wp, wn = weights[:, y], weights[:, ~y]
    total = wp.sum(axis=1) * wn.sum(axis=1)
    change = psi(pos[1], neg[1]) - psi(pos[0], neg[0])  # one kernel: the difference is linear
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("bp,pn,bn->b", wp, change, wn) / total


def _accuracy_differences(cell: PairedCell, weights: np.ndarray) -> np.ndarray:
    """Weighted accuracy(variant) - accuracy(baseline) per row of ``weights``."""
    gain = np.asarray(cell.variant, float) - np.asarray(cell.baseline, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights @ gain / weights.sum(axis=1)
