"""What a variant changed, pair by pair: the counts behind a paired difference.

For AUROC the pairs are the cross-class (faulty, normal) pairs of a cell, each scored 1, 1/2
(tie) or 0 by the Mann-Whitney kernel; a pair is *worse* when the variant's kernel is lower than
the baseline's. For accuracy the pairs are the units themselves (right or wrong). Either way
``difference == (better - worse) / total`` on one cell, exactly: these are McNemar's discordant
cells, and ``(worse + better) / total`` bounds ``|difference|``.

- :func:`discordance`: the counts summed over cells.
- :func:`mcnemar_exact`: the exact McNemar test of two classifiers on the same images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src.stats.cells import PairedCell, check_statistic, split_classes
from src.stats.delong import psi


@dataclass(frozen=True)
class Discordance:
    """Changed pairs of a variant against its baseline, summed over cells.

    Attributes:
        worse: Pairs the variant made worse (a tie change counts 1/2); accuracy: units that went
            right -> wrong.
        better: Likewise, made better.
        total: Pairs compared: ``P * N`` per cell (auroc) or ``n`` units (accuracy), summed.
        units_moved: Distinct units in at least one changed pair (accuracy: whose correctness
            changed).
        n_cells: Cells summed.
    """

    worse: float
    better: float
    total: float
    units_moved: int
    n_cells: int

    @property
    def rate(self) -> float:
        """``(worse + better) / total``: on one cell, ``|difference| <= rate``."""
        return (self.worse + self.better) / self.total if self.total else math.nan

    @property
    def identical(self) -> bool:
        """No pair changed in any cell: the data carry no interval, only a bound on how many
        units could be affected unseen."""
        return self.worse == 0 and self.better == 0


def _cell_counts(cell: PairedCell, statistic: str) -> tuple[float, float, float, set]:
    """(worse, better, total, ids of moved units) of one cell."""
    ids = np.asarray(cell.units).astype(str)
    if statistic == "accuracy":
        change = np.asarray(cell.variant, float) - np.asarray(cell.baseline, float)
        worse, better = float(np.sum(change < 0)), float(np.sum(change > 0))
        return worse, better, float(change.size), set(ids[change != 0])
    y, pos, neg = split_classes(cell)
    change = psi(pos[1], neg[1]) - psi(pos[0], neg[0])  # P x N, in {-1, -1/2, 0, 1/2, 1}
    moved = change != 0
    worse, better = float(-change[change < 0].sum()), float(change[change > 0].sum())
    units = set(ids[y][moved.any(axis=1)]) | set(ids[~y][moved.any(axis=0)])
    return worse, better, float(change.size), units


def discordance(cells: Sequence[PairedCell], statistic: str) -> Discordance:
    """Pairs made worse and better by the variant, summed over ``cells``.

    Args:
        cells: Paired units per fold x seed.
        statistic: ``auroc`` (cross-class pairs) or ``accuracy`` (units).

    Raises:
        ValueError: No cells, an unknown statistic, or a cell without both classes (auroc).
    """
    check_statistic(cells, statistic)
    counts = [_cell_counts(cell, statistic) for cell in cells]
    moved = set().union(*(c[3] for c in counts))
    worse, better, total = (sum(c[k] for c in counts) for k in range(3))
    return Discordance(worse, better, total, len(moved), len(cells))


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
