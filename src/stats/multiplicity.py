"""Decisions over a family of variants that share a baseline: Holm's step-down procedure keeps
the family-wise error (any variant called non-inferior while it is not) at ``alpha`` under any
dependence between the tests (Holm 1979)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float], alpha: float = 0.025) -> np.ndarray:
    """Which nulls Holm rejects: sort the k p-values; reject while ``p_(j) <= alpha / (k - j + 1)``
    (j = 1..k), and stop at the first that fails.

    With non-inferiority p-values a rejection is a *non-inferior* call. A nan p-value (no test:
    no interval, nothing changed) is never rejected and still counts in k, as a p of 1 would.

    Args:
        p_values: One p-value per variant.
        alpha: Family-wise error rate (one-sided 0.025 by default, as each verdict's).

    Returns:
        A boolean per p-value, in the given order: True where the null is rejected.
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    p = np.where(np.isnan(p), np.inf, p)
    order = np.argsort(p, kind="stable")
    k = p.size
    passes = p[order] <= alpha / (k - np.arange(k))
    # Step-down: every rank up to (not including) the first failure is rejected.
    rejected_sorted = np.cumprod(passes).astype(bool)
    rejected = np.zeros(k, dtype=bool)
    rejected[order] = rejected_sorted
    return rejected
