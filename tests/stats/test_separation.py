"""The tuning split's figures a search selects on: ``pytest tests/stats/test_separation.py``."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from src.stats.separation import median_log_shift, soft_auroc


def test_soft_auroc_moves_where_auroc_is_stuck_at_one():
    rng = np.random.default_rng(0)
    normals = rng.lognormal(0, 0.3, 48)
    labels = np.r_[np.zeros(48), np.ones(3)]
    found = []
    for gap in (1.5, 2.0, 3.0):  # three faulty vehicles, always above every normal
        scores = np.r_[normals, normals.max() * np.exp([gap * 0.1, gap * 0.2, gap * 0.3])]
        assert roc_auc_score(labels, scores) == 1.0
        found.append(soft_auroc(scores, labels))
    assert 0.5 < found[0] < found[1] < found[2] < 1.0


def test_soft_auroc_is_scale_free_and_half_without_separation():
    rng = np.random.default_rng(1)
    scores, labels = rng.lognormal(0, 1, 400), np.r_[np.zeros(200), np.ones(200)]
    assert soft_auroc(scores, labels) == pytest.approx(0.5, abs=0.05)
    assert soft_auroc(scores * 7.5, labels) == pytest.approx(soft_auroc(scores, labels))


@pytest.mark.parametrize(
    "scores, labels",
    [
        ([1.0, 2.0, 3.0], [0, 0, 0]),  # no positive
        ([1.0, 2.0, 3.0], [0, 1, 1]),  # one negative
        ([1.0, 1.0, 3.0], [0, 0, 1]),  # equal negatives
        ([0.0, 2.0, 3.0], [0, 0, 1]),  # no logarithm
    ],
)
def test_soft_auroc_says_nan_where_it_cannot_tell(scores, labels):
    assert math.isnan(soft_auroc(np.array(scores), np.array(labels)))


def test_the_log_shift_is_zero_for_a_model_against_itself_and_a_rescaling():
    scores = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    assert median_log_shift(scores, scores) == 0
    assert median_log_shift(scores, scores * 3) == pytest.approx(0)
    moved = scores * np.exp([0.0, 0.0, 0.0, 1.0, -1.0])  # two of five units move by 1
    assert median_log_shift(scores, moved) == pytest.approx(0)
    small, large = (
        median_log_shift(scores, scores * np.exp(e * np.r_[0, 1, 2, -1, 1])) for e in (0.1, 0.5)
    )
    assert 0 < small < large
    assert math.isnan(median_log_shift(scores, -scores))
