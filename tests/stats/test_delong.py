"""DeLong against independent computations: ``pytest tests/stats/test_delong.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, t
from sklearn.metrics import roc_auc_score

from src.stats import delong_paired
from src.stats.delong import component_differences, t_quantile, t_sf


def _naive_delong(y, a, b):
    """DeLong et al. (1988) written out with loops: structural components, their covariance."""
    pos, neg = [i for i in range(len(y)) if y[i]], [i for i in range(len(y)) if not y[i]]

    def psi(x, z):
        return 1.0 if x > z else 0.5 if x == z else 0.0

    comps = {}
    for name, s in (("a", a), ("b", b)):
        comps[name] = (
            [sum(psi(s[i], s[j]) for j in neg) / len(neg) for i in pos],
            [sum(psi(s[i], s[j]) for i in pos) / len(pos) for j in neg],
        )

    def cov(u, v):
        return sum((x - np.mean(u)) * (z - np.mean(v)) for x, z in zip(u, v, strict=True)) / (
            len(u) - 1
        )

    var = 0.0
    for k, size in ((0, len(pos)), (1, len(neg))):
        ua, ub = comps["a"][k], comps["b"][k]
        var += (cov(ua, ua) + cov(ub, ub) - 2 * cov(ua, ub)) / size
    return np.mean(comps["b"][0]) - np.mean(comps["a"][0]), np.sqrt(var)


def test_delong_matches_a_loop_implementation_and_sklearn():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(9), np.zeros(14)].astype(int)
    a = y + rng.normal(0, 1.0, y.size)
    b = 0.7 * a + rng.normal(0, 0.8, y.size)
    b[3] = b[20]  # a tie across classes
    result = delong_paired(y, a, b)
    diff, se = _naive_delong(y, a, b)
    assert result.auroc_baseline == pytest.approx(roc_auc_score(y, a))
    assert result.auroc_variant == pytest.approx(roc_auc_score(y, b))
    assert result.difference == pytest.approx(diff) and result.se == pytest.approx(se)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(diff) / se))
    assert result.ci_low == pytest.approx(diff - 1.959963984540054 * se)
    assert (result.n_pos, result.n_neg, result.df) == (9, 14, 8)
    d10, d01 = component_differences(y, a, b)
    assert d10.mean() == pytest.approx(diff) and d01.mean() == pytest.approx(diff)


def test_identical_models_do_not_differ_and_a_spreadless_difference_has_no_p_value():
    y = np.r_[np.ones(5), np.zeros(5)]
    s = np.arange(10.0)
    result = delong_paired(y, s, s)
    assert (result.difference, result.se, result.p_value) == (0.0, 0.0, 1.0)
    # Every positive falls below every negative by the same margin: se 0, difference -1.
    flipped = np.r_[np.zeros(5), np.ones(5)] + 0.0
    spreadless = delong_paired(y, y.astype(float), flipped)
    assert spreadless.se == 0 and spreadless.difference == -1 and math.isnan(spreadless.p_value)


@pytest.mark.parametrize("df", [1, 4, 9, 30])
def test_the_t_helpers_are_scipy_students_t(df):
    for q in (0.5, 0.8, 0.975, 0.999):
        assert t_quantile(q, df) == pytest.approx(t.ppf(q, df), rel=1e-10)
    for x in (-2.0, 0.0, 1.3, 4.0):
        assert t_sf(x, df) == pytest.approx(t.sf(x, df), rel=1e-10)
