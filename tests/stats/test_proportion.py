"""Clopper-Pearson bounds against scipy: ``pytest tests/stats/test_proportion.py``."""

from __future__ import annotations

import math

import pytest
from scipy.stats import beta, binomtest

from src.stats.proportion import clopper_pearson, cp_lower, cp_upper


@pytest.mark.parametrize(("k", "n"), [(0, 10), (0, 22), (0, 72), (2, 72), (5, 12), (9, 10)])
def test_bounds_are_the_beta_quantiles(k, n):
    assert cp_upper(k, n) == pytest.approx(beta.ppf(0.975, k + 1, n - k), abs=1e-12)
    if k:
        assert cp_lower(k, n) == pytest.approx(beta.ppf(0.025, k, n - k + 1), abs=1e-12)
    else:
        assert cp_lower(k, n) == 0.0


def test_the_audit_figures():
    # 0 flips among 10, 22, 72 units (verdict audit, I1/I6)
    assert [round(cp_upper(0, n), 3) for n in (10, 22, 72)] == [0.308, 0.154, 0.050]


def test_two_sided_matches_scipy_exact_interval():
    for k, n in ((0, 12), (3, 12), (12, 12), (7, 48)):
        ref = binomtest(k, n).proportion_ci(0.95, method="exact")
        low, high = clopper_pearson(k, n)
        assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-10)


def test_edges_and_bad_counts():
    assert cp_upper(10, 10) == 1.0 and math.isnan(cp_upper(0, 0))
    with pytest.raises(ValueError, match="whole counts"):
        cp_upper(3, 2)
    with pytest.raises(ValueError, match="whole counts"):
        cp_upper(0.5, 2)
