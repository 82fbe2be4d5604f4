"""The five-fold by-vehicle protocol's invariants: ``python -m pytest tests/data/test_split.py``."""

import random

import pandas as pd
import pytest

from src.core.errors import ConfigError
from src.data.split import N_FOLDS, five_fold_split, fold_slice

BRANDS = {
    1: (range(1, 169), range(169, 199)),
    2: (range(201, 234), range(234, 250)),
    3: (range(401, 492), range(492, 501)),
}
TEST_CARS = {1: [57, 58, 57, 58, 58], 2: [19, 20, 19, 20, 19], 3: [26, 25, 25, 25, 26]}


def _labels(brand):
    normal, faulty = BRANDS[brand]
    return pd.Series([0] * len(normal) + [1] * len(faulty), index=[*normal, *faulty])


@pytest.mark.parametrize("brand", [1, 2, 3])
@pytest.mark.parametrize("fold", range(N_FOLDS))
def test_roles_are_disjoint_and_one_class_training(brand, fold):
    labels = _labels(brand)
    s = five_fold_split(labels, fold)
    assert set(s.tuning_cars).isdisjoint(s.test_cars)
    assert set(s.train_cars) <= set(s.tuning_cars)
    assert (labels.loc[list(s.train_cars)] == 0).all()
    assert set(s.tuning_cars) | set(s.test_cars) == set(labels.index)
    assert labels.loc[list(s.tuning_cars)].nunique() == 2
    assert labels.loc[list(s.test_cars)].nunique() == 2
    assert len(s.test_cars) == TEST_CARS[brand][fold]


@pytest.mark.parametrize("brand", [1, 2, 3])
def test_folds_partition_the_cars(brand):
    labels = _labels(brand)
    splits = [five_fold_split(labels, k) for k in range(N_FOLDS)]
    held_out_normal = [c for s in splits for c in s.test_cars if labels[c] == 0]
    assert sorted(held_out_normal) == sorted(labels.index[labels == 0])
    tuning_faulty = [c for s in splits for c in s.tuning_cars if labels[c] == 1]
    assert sorted(tuning_faulty) == sorted(labels.index[labels == 1])


def test_order_is_the_reference_shuffle():
    """Sorted ids, ``random.seed(0)``, shuffle normal then faulty, as the reference notebook."""
    labels = _labels(2)
    normal, faulty = sorted(BRANDS[2][0]), sorted(BRANDS[2][1])
    random.seed(0)
    random.shuffle(normal)
    random.shuffle(faulty)
    s = five_fold_split(labels, 0)
    assert list(s.normal_order) == normal and list(s.faulty_order) == faulty
    assert list(s.test_cars[:6]) == normal[fold_slice(33, 0)]


def test_fold_slices_match_the_reference_sizes():
    assert [len(range(168)[fold_slice(168, k)]) for k in range(5)] == [33, 34, 33, 34, 34]
    assert [len(range(16)[fold_slice(16, k)]) for k in range(5)] == [3, 3, 3, 3, 4]


def test_bad_fold_and_too_few_cars():
    with pytest.raises(ConfigError, match="data.fold=5"):
        five_fold_split(_labels(3), 5)
    with pytest.raises(ConfigError, match="at least 5"):
        five_fold_split(pd.Series([0] * 10 + [1] * 3, index=range(13)), 0)


# --- calibration normals: held out of training, for the conformal threshold ----------------


@pytest.mark.parametrize("brand", [1, 2, 3])
@pytest.mark.parametrize("fold", range(N_FOLDS))
def test_calibration_cars_are_training_normals_held_out_of_every_other_role(brand, fold):
    labels = _labels(brand)
    paper = five_fold_split(labels, fold)
    s = five_fold_split(labels, fold, calibration_normals=0.4)
    calibration = set(s.calibration_cars)
    assert calibration and calibration <= set(paper.train_cars)
    assert calibration.isdisjoint({*s.train_cars, *s.tuning_cars, *s.test_cars})
    assert set(s.train_cars) | calibration == set(paper.train_cars)
    assert len(calibration) == round(0.4 * len(paper.train_cars))
    # Test cars, faulty slice and protocol order are the paper's.
    assert (s.test_cars, s.normal_order, s.faulty_order) == (
        paper.test_cars,
        paper.normal_order,
        paper.faulty_order,
    )
    assert set(s.tuning_cars) - set(s.train_cars) == set(paper.tuning_cars) - set(paper.train_cars)


def test_calibration_draw_is_deterministic_and_follows_the_seed_and_fold():
    labels = _labels(1)
    draw = five_fold_split(labels, 0, calibration_normals=20).calibration_cars
    assert len(draw) == 20 and draw == five_fold_split(labels, 0, 0, 20).calibration_cars
    assert list(draw) == [c for c in five_fold_split(labels, 0).normal_order if c in draw]
    other_seed = five_fold_split(labels, 0, 1, 20).calibration_cars
    other_fold = five_fold_split(labels, 1, 0, 20).calibration_cars
    assert set(draw) != set(other_seed) and set(draw) != set(other_fold)


def test_no_calibration_is_the_paper_split():
    labels = _labels(3)
    for fold in range(N_FOLDS):
        assert five_fold_split(labels, fold, 0, 0) == five_fold_split(labels, fold)
        assert five_fold_split(labels, fold).calibration_cars == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (73, "holds out 73 of the 73 normal training cars of fold 0, leaving none"),
        (0.001, "of 73 training normals holds out none"),
        (1.5, "a share must be in .0, 1."),
        (-1, "give a count >= 0 or a share"),
        ("ten", "give a count >= 0 or a share"),
    ],
)
def test_a_bad_calibration_count_is_one_config_error(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        five_fold_split(_labels(3), 0, calibration_normals=value)
    assert "task.evaluation.calibration_normals=" in str(info.value)
    assert "\n" not in str(info.value)
