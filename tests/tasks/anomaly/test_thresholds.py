"""The car-level threshold rules: ``python -m pytest tests/tasks/anomaly/test_thresholds.py``."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_curve

from src.tasks.anomaly.thresholds import (
    conformal_rank,
    conformal_threshold,
    normal_max_threshold,
    reference_cut,
    reference_threshold,
    youden_threshold,
)


def _shuffled(errors, faulty, seed=0):
    order = np.random.default_rng(seed).permutation(len(errors))
    return np.asarray(errors, dtype=float)[order], np.asarray(faulty)[order]


# --- conformal threshold --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "alpha", "rank"),
    [(19, 0.05, 19), (20, 0.05, 20), (39, 0.05, 38), (9, 0.1, 9), (4, 0.5, 3)],
)
def test_conformal_rank_is_the_ceiling_without_float_noise(n, alpha, rank):
    # (1 - 0.05) * 20 is 18.999999999999996 in floats: the rank must still be 19.
    assert conformal_rank(n, alpha) == rank == math.ceil((1 - alpha) * (n + 1) - 1e-9)


def test_conformal_threshold_is_the_order_statistic():
    scores = pd.Series(np.random.default_rng(0).permutation(np.arange(1.0, 40.0)))  # 1..39
    # n = 39: rank ceil(0.95 * 40) = 38, the 38th smallest of 1..39 is 38.
    assert conformal_threshold(scores, 0.05) == 38.0
    assert conformal_threshold(scores, 0.5) == 20.0  # ceil(0.5 * 40) = 20
    assert conformal_threshold(scores[:19], 0.05) == scores[:19].max()  # rank n: the maximum


def test_conformal_threshold_flags_nothing_when_alpha_is_out_of_reach(caplog):
    scores = pd.Series(np.arange(10.0))
    with caplog.at_level(logging.WARNING):
        assert conformal_threshold(scores, 0.05) == math.inf  # ceil(0.95 * 11) = 11 > 10
    assert "10 calibration normals cannot bound false alarms at alpha=0.05" in caplog.text
    assert "1/11" in caplog.text


def test_conformal_threshold_with_ties_never_flags_a_tied_normal():
    # Ten cars at 1.0 and one at 5.0: rank ceil(0.9 * 12) = 11 of 11 -> 5.0; rank 10 -> 1.0,
    # and a test car at exactly 1.0 is not flagged (score > threshold), so ties only help.
    scores = pd.Series([1.0] * 10 + [5.0])
    assert conformal_threshold(scores, 0.1) == 5.0
    tau = conformal_threshold(scores, 0.17)  # ceil(0.83 * 12) = 10
    assert tau == 1.0 and not (pd.Series([1.0]) > tau).any()


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_conformal_threshold_refuses_alpha_outside_0_1(alpha):
    with pytest.raises(ValueError, match="must be in .0, 1."):
        conformal_threshold(pd.Series([1.0, 2.0]), alpha)


def test_conformal_threshold_needs_calibration_cars():
    with pytest.raises(ValueError, match="needs calibration cars"):
        conformal_threshold(pd.Series([], dtype=float), 0.05)


# --- reference threshold --------------------------------------------------------------------


def test_reference_threshold_on_hand_built_ranking():
    # 1000 snippets with errors 1000..1; rank 1 is normal, ranks 2-10 faulty, the rest normal,
    # so the top-10 slice (n = 10, 9/10 faulty) has the highest share and tau = 991.
    errors = np.arange(1000, 0, -1, dtype=float)
    faulty = np.zeros(1000, dtype=bool)
    faulty[1:10] = True
    errors, faulty = _shuffled(errors, faulty)
    assert reference_cut(errors, faulty) == (10, 991.0)
    assert reference_threshold(errors, faulty) == 991.0


def test_reference_threshold_ties_go_to_smallest_n():
    # Ranks 2 and 4 are faulty: shares 0, 1/2, 1/3, 2/4, then falling -> n = 2 beats n = 4.
    errors = np.arange(1000, 0, -1, dtype=float)
    faulty = np.zeros(1000, dtype=bool)
    faulty[[1, 3]] = True
    assert reference_cut(errors, faulty) == (2, 999.0)


def test_reference_threshold_takes_at_least_one_snippet():
    # 500 snippets: n = 1 gives int(0.5) = 0, which must still count the top snippet.
    errors = np.arange(500, 0, -1, dtype=float)
    faulty = np.zeros(500, dtype=bool)
    faulty[0] = True
    assert reference_cut(errors, faulty) == (1, 500.0)


# --- youden threshold -----------------------------------------------------------------------


def test_youden_threshold_reproduces_best_j_with_strict_inequality():
    rng = np.random.default_rng(5)
    labels = pd.Series(rng.integers(0, 2, 80))
    scores = pd.Series(np.round(rng.random(80) + 0.4 * labels, 1))  # rounding makes ties
    fpr, tpr, _ = roc_curve(labels, scores)
    tau = youden_threshold(scores, labels)
    pred, y = scores.to_numpy() > tau, labels.to_numpy() == 1
    assert pred[y].mean() - pred[~y].mean() == pytest.approx(np.max(tpr - fpr))


def test_youden_ties_go_to_the_larger_threshold():
    # J = 1/2 when flagging {4} or {4, 3, 2}; the larger threshold wins, halfway down to 3.
    scores, labels = pd.Series([4.0, 3.0, 2.0, 1.0]), pd.Series([1, 0, 1, 0])
    assert youden_threshold(scores, labels) == 3.5


def test_youden_threshold_is_finite_when_flagging_nobody_is_best():
    scores, labels = pd.Series([2.0, 1.0]), pd.Series([0, 1])
    tau = youden_threshold(scores, labels)
    assert tau == 2.0 and not (scores > tau).any()


# --- normal_max ---------------------------------------------------------------------------


def test_normal_max_is_not_dragged_down_by_a_weak_faulty_tuning_car():
    """The fold-1 case of the default data: one faulty tuning car scores like a normal one.
    Youden then cuts into the normal cars; normal_max keeps its cut above every normal car."""
    normal = pd.Series(np.linspace(0.002, 0.017, 48), index=[f"n{i}" for i in range(48)])
    faulty = pd.Series([0.0054, 0.008], index=["f0", "f1"])
    scores = pd.concat([normal, faulty])
    labels = pd.Series([0] * 48 + [1, 1], index=scores.index)
    assert normal_max_threshold(scores, labels) == pytest.approx(0.017)
    assert youden_threshold(scores, labels) < 0.008  # flags the normal cars above the weak one
