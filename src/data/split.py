"""The reference five-fold split by vehicle (``five_fold_train_test_split.ipynb`` of the DyAD repo).

Normal and faulty car ids are sorted, Python's ``random`` is seeded once with 0 and shuffles the
normal list, then the faulty list (this reproduces the official ``ind_odd_dict`` order). Fold k of
a list of length N is the slice ``[int(k*N/5), int((k+1)*N/5))``. Roles for fold k:

- training: normal cars outside fold k (one-class training, no faulty car ever);
- tuning: the training cars plus fold k's faulty slice (choose h and the threshold);
- test: fold k's normal cars plus the faulty cars outside fold k's slice (report AUROC).

Beyond the paper, ``calibration_normals`` sets some of fold k's training normals aside: they are
neither trained on nor used to choose h, only to place the threshold (the conformal rule of
``src.tasks.anomaly``). Their scores are then out-of-sample, like the test normals', which the
training cars' scores are not. They are drawn from the training normals with their own seeded
generator, so the paper's order, folds and test cars stay exactly as they are; with 0 (the
default) the split is the paper's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from src.core.errors import ConfigError

N_FOLDS = 5


@dataclass(frozen=True)
class FoldSplit:
    """Vehicle roles of one fold. Car ids are Python ints, in protocol order; the calibration
    cars (normal, never trained on) are in none of the other roles."""

    fold: int
    normal_order: tuple[int, ...]
    faulty_order: tuple[int, ...]
    train_cars: tuple[int, ...]
    tuning_cars: tuple[int, ...]
    test_cars: tuple[int, ...]
    calibration_cars: tuple[int, ...] = ()


def fold_slice(n: int, fold: int) -> slice:
    """Index range of fold ``fold`` in a list of length ``n``."""
    return slice(int(fold * n / N_FOLDS), int((fold + 1) * n / N_FOLDS))


def five_fold_split(
    car_labels: pd.Series, fold: int, seed: int = 0, calibration_normals: float = 0
) -> FoldSplit:
    """Assign every car to its role for ``fold``.

    Args:
        car_labels: car id -> 0 (normal) / 1 (faulty), one entry per car that has snippets.
        fold: 0..4.
        seed: Seed of the car shuffle; 0 is the published protocol.
        calibration_normals: Normal training cars to set aside for the threshold: a count (an
            int >= 0; 0: none, the published protocol) or a share of the fold's training
            normals (a float in (0, 1), rounded).

    Raises:
        ConfigError: Bad fold, too few cars of a class to fill five folds, or a calibration
            count that holds out no car or every training car.
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
    calibration = _calibration_cars(train, calibration_normals, fold, seed)
    train = [c for c in train if c not in calibration]
    return FoldSplit(
        fold=fold,
        normal_order=tuple(normal),
        faulty_order=tuple(faulty),
        train_cars=tuple(train),
        tuning_cars=tuple(train + faulty[faulty_k]),
        test_cars=tuple(normal[normal_k] + faulty_test),
        calibration_cars=tuple(c for c in normal if c in calibration),
    )


def calibration_count(n_train: int, calibration_normals: float, fold: int = 0) -> int:
    """How many of ``n_train`` training normals ``calibration_normals`` (a count or a share)
    sets aside; at least one car must remain to train on.

    Raises:
        ConfigError: Not a count >= 0 or a share in (0, 1); or it leaves no car to train on, or
            (a share) holds out none.
    """
    key = f"task.evaluation.calibration_normals={calibration_normals!r}"
    value = calibration_normals
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key}: give a count >= 0 or a share in (0, 1)")
    if isinstance(value, float) and not value.is_integer():
        if value > 1:
            raise ConfigError(f"{key}: a share must be in (0, 1); a count must be whole")
        count = round(value * n_train)
        if count == 0:
            raise ConfigError(f"{key} of {n_train} training normals holds out none; raise it")
    else:
        count = int(value)
    if count >= n_train:
        raise ConfigError(
            f"{key} holds out {count} of the {n_train} normal training cars of fold {fold}, "
            "leaving none to train on; lower it"
        )
    return count


def _calibration_cars(train: list[int], calibration_normals: float, fold: int, seed: int) -> set:
    """The calibration cars: a draw from the fold's training normals by a generator of its own
    (seeded by the split seed and fold), so the protocol's shuffle is left untouched."""
    count = calibration_count(len(train), calibration_normals, fold)
    if count == 0:
        return set()
    rng = random.Random(f"calibration normals: seed {seed}, fold {fold}")
    return set(rng.sample(sorted(train), count))
