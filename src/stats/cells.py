"""The paired data every estimator here reads: one :class:`PairedCell` per fold x seed, and the
distinct units (vehicles, images) behind a list of cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STATISTICS = ("auroc", "accuracy")


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


def check_statistic(cells: Sequence[PairedCell], statistic: str) -> None:
    """Raises ValueError for no cells or an unknown statistic."""
    if not cells:
        raise ValueError("a paired estimate needs at least one cell")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")


def split_classes(cell: PairedCell) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The cell's positive mask and its (baseline, variant) scores of positives and negatives.

    Raises:
        ValueError: The cell lacks normal or faulty units.
    """
    y = np.asarray(cell.labels).astype(bool)
    if y.all() or not y.any():
        raise ValueError("every cell needs normal and faulty units for a paired AUROC")
    scores = [np.asarray(s, dtype=float) for s in (cell.baseline, cell.variant)]
    return y, [s[y] for s in scores], [s[~y] for s in scores]


def units_of(cells: Sequence[PairedCell]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Distinct units with their labels, and each cell's positions into them.

    Raises:
        ValueError: A unit carries two labels (in two cells, or twice in one): its label must
            be the same wherever it is scored, or the strata would not be the units' own.
    """
    ids = np.concatenate([np.asarray(c.units).astype(str) for c in cells])
    labels = np.concatenate([np.asarray(c.labels) for c in cells]).astype(int)
    units, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    clash = np.flatnonzero(labels != labels[first][inverse])
    if clash.size:
        unit = str(ids[clash[0]])
        seen = sorted(set(labels[ids == unit].tolist()))
        raise ValueError(f"unit {unit!r} has labels {seen} in different cells; one label per unit")
    bounds = np.cumsum([0, *(len(c.units) for c in cells)])
    index = [inverse[bounds[k] : bounds[k + 1]] for k in range(len(cells))]
    return units, labels[first], index
