"""The reference five-fold split by vehicle (``five_fold_train_test_split.ipynb`` of the DyAD repo).

Normal and faulty car ids are sorted, Python's ``random`` is seeded once with 0 and shuffles the
normal list, then the faulty list (this reproduces the official ``ind_odd_dict`` order). Fold k of
a list of length N is the slice ``[int(k*N/5), int((k+1)*N/5))``. Roles for fold k:

- training: normal cars outside fold k (one-class training, no faulty car ever);
- tuning: the training cars plus fold k's faulty slice (choose h and the threshold);
- test: fold k's normal cars plus the faulty cars outside fold k's slice (report AUROC).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from src.core.errors import ConfigError

N_FOLDS = 5


@dataclass(frozen=True)
class FoldSplit:
    """Vehicle roles of one fold. Car ids are Python ints, in protocol order."""

    fold: int
    normal_order: tuple[int, ...]
    faulty_order: tuple[int, ...]
    train_cars: tuple[int, ...]
    tuning_cars: tuple[int, ...]
    test_cars: tuple[int, ...]


def fold_slice(n: int, fold: int) -> slice:
    """Index range of fold ``fold`` in a list of length ``n``."""
    return slice(int(fold * n / N_FOLDS), int((fold + 1) * n / N_FOLDS))


def five_fold_split(car_labels: pd.Series, fold: int, seed: int = 0) -> FoldSplit:
    """Assign every car to its role for ``fold``.

    Args:
        car_labels: car id -> 0 (normal) / 1 (faulty), one entry per car that has snippets.
        fold: 0..4.
        seed: Seed of the car shuffle; 0 is the published protocol.

    Raises:
        ValueError: Bad fold, or too few cars of a class to fill five folds.
    """
    if fold not in range(N_FOLDS):
        raise ConfigError(f"data.fold={fold} is out of range; choose 0..{N_FOLDS - 1}")
    normal = sorted(int(c) for c in car_labels.index[car_labels == 0])
    faulty = sorted(int(c) for c in car_labels.index[car_labels == 1])
    if len(normal) < N_FOLDS or len(faulty) < N_FOLDS:
        raise ConfigError(
            f"five folds need at least {N_FOLDS} normal and {N_FOLDS} faulty cars; found "
            f"{len(normal)} normal and {len(faulty)} faulty; check label/*.csv"
        )
    rng = random.Random(seed)
    rng.shuffle(normal)
    rng.shuffle(faulty)
    normal_k, faulty_k = fold_slice(len(normal), fold), fold_slice(len(faulty), fold)
    train = [c for i, c in enumerate(normal) if i not in range(len(normal))[normal_k]]
    faulty_test = [c for i, c in enumerate(faulty) if i not in range(len(faulty))[faulty_k]]
    return FoldSplit(
        fold=fold,
        normal_order=tuple(normal),
        faulty_order=tuple(faulty),
        train_cars=tuple(train),
        tuning_cars=tuple(train + faulty[faulty_k]),
        test_cars=tuple(normal[normal_k] + faulty_test),
    )
