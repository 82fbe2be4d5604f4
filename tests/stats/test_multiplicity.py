"""Holm's step-down: ``pytest tests/stats/test_multiplicity.py``."""

from __future__ import annotations

import numpy as np

from src.stats import holm


def test_one_test_is_the_unadjusted_test():
    for p in (0.001, 0.0249, 0.025, 0.0251, 0.5):
        assert holm([p], alpha=0.025)[0] == (p <= 0.025)
    assert not holm([np.nan])[0]


def test_a_hand_worked_example():
    # k = 4 at alpha 0.05: thresholds 0.0125, 0.0167, 0.025, 0.05 for the sorted p-values
    # 0.01 (pass), 0.015 (pass), 0.03 (fail: 0.03 > 0.025), so 0.04 is not rejected either
    # although it is below 0.05 on its own.
    p = [0.04, 0.01, 0.03, 0.015]
    assert list(holm(p, alpha=0.05)) == [False, True, False, True]
    assert list(holm([0.04, 0.01, 0.02, 0.015], alpha=0.05)) == [True, True, True, True]


def test_nan_counts_in_k_and_is_never_rejected():
    # Without the nan, 0.03 passes second at 0.05/1; with it, k = 3 and 0.03 > 0.05/2.
    assert list(holm([0.03, 0.001], alpha=0.05)) == [True, True]
    assert list(holm([0.03, np.nan, 0.001], alpha=0.05)) == [False, False, True]
