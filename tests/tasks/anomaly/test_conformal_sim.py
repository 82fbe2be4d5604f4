"""The false-alarm rates the threshold rules deliver, by simulation (slow tier):
``python -m pytest tests/tasks/anomaly/test_conformal_sim.py -m slow -s``.

Vehicle scores of normal cars are lognormal. The ``conformal`` rule places its threshold among
normal calibration cars drawn like the test normals (held out of training: exchangeable). The
``normal_max`` rule places it above normal tuning cars that are the training cars, whose scores
training fits: they come out shrunk (x 0.8) against the test normals'. Each draw scores 12 test
normal cars, as a fold of the default data does; the rate is their flagged share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.tasks.anomaly.thresholds import (
    conformal_rank,
    conformal_threshold,
    normal_max_threshold,
)

DRAWS, TEST_NORMALS, ALPHA = 1000, 12, 0.05
SHRINK = 0.8  # in-sample scores of the training cars against out-of-sample ones

pytestmark = pytest.mark.slow


def _scores(rng, *shape):
    return np.exp(rng.normal(-4.6, 0.3, shape))  # around 0.01, as DyAD's vehicle scores


def _false_alarm_rates(thresholds: np.ndarray, rng) -> np.ndarray:
    test = _scores(rng, len(thresholds), TEST_NORMALS)
    return (test > thresholds[:, None]).mean(axis=1)


def _conformal_rates(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    calibration = _scores(rng, DRAWS, n)
    thresholds = np.array([conformal_threshold(pd.Series(row), ALPHA) for row in calibration])
    return _false_alarm_rates(thresholds, rng)


def _normal_max_rates(n: int, shrink: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tuning = _scores(rng, DRAWS, n) * shrink
    labels = pd.Series(np.zeros(n, dtype=int))
    thresholds = np.array([normal_max_threshold(pd.Series(row), labels) for row in tuning])
    return _false_alarm_rates(thresholds, rng)


def _summary(name: str, rates: np.ndarray, bound: float) -> tuple[float, float]:
    mean, se = float(rates.mean()), float(rates.std(ddof=1) / np.sqrt(len(rates)))
    print(f"{name}: mean test false-alarm rate {mean:.4f} (MC se {se:.4f}); bound {bound:.4f}")
    return mean, se


@pytest.mark.parametrize("n", [30, 48])
def test_conformal_keeps_the_mean_false_alarm_rate_under_alpha(n):
    """With more calibration cars than alpha needs, the exact level (n + 1 - k)/(n + 1) is
    below alpha (30 cars: 1/31; 48: 2/49), and the mean rate over 1,000 draws stays <= 0.05."""
    level = (n + 1 - conformal_rank(n, ALPHA)) / (n + 1)
    mean, se = _summary(f"conformal n={n}", _conformal_rates(n, seed=n), level)
    assert mean <= ALPHA
    assert abs(mean - level) <= 4 * se  # the level is exact, not merely a bound


def test_conformal_at_the_default_data_count_sits_at_alpha():
    """19 calibration cars (40 % of a default-data fold's 48 training normals): the threshold
    is their maximum and the level is exactly 1/20 = alpha; the mean rate is alpha up to
    Monte Carlo error."""
    mean, se = _summary("conformal n=19", _conformal_rates(19, seed=19), 1 / 20)
    assert mean <= ALPHA + 3 * se and abs(mean - ALPHA) <= 4 * se


def test_normal_max_on_in_sample_normals_exceeds_its_nominal_level():
    """48 tuning normals (a default-data fold's training cars): exchangeable, max-of-n would
    flag a test normal with probability 1/49; scored in-sample (shrunk), far more often."""
    n = 48
    exchangeable, se = _summary("normal_max, exchangeable", _normal_max_rates(n, 1.0, 1), 1 / 49)
    assert abs(exchangeable - 1 / (n + 1)) <= 4 * se
    shrunk, _ = _summary("normal_max, in-sample x0.8", _normal_max_rates(n, SHRINK, 2), 1 / 49)
    assert shrunk > 1 / (n + 1) and shrunk > ALPHA
