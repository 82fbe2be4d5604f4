"""Exact (Clopper-Pearson) bounds of a binomial proportion: recall and false-alarm rate of a
handful of vehicles, and the share of units whose decision a variant flipped.

Only :mod:`scipy.special` is loaded (when a bound is asked for): the leaderboard, which calls
these, stays light.
"""

from __future__ import annotations

import math


def _check(k: float, n: float) -> tuple[int, int]:
    if n != int(n) or k != int(k) or not 0 <= k <= n:
        raise ValueError(f"need whole counts 0 <= k <= n, got k={k}, n={n}")
    return int(k), int(n)


def cp_upper(k: float, n: float, level: float = 0.975) -> float:
    """One-sided ``level`` Clopper-Pearson upper bound of a proportion seen ``k`` times in ``n``:
    ``beta.ppf(level, k + 1, n - k)`` (1 when ``k == n``; nan when ``n == 0``)."""
    k, n = _check(k, n)
    if n == 0:
        return math.nan
    if k == n:
        return 1.0
    from scipy.special import betaincinv

    return float(betaincinv(k + 1, n - k, level))


def cp_lower(k: float, n: float, level: float = 0.975) -> float:
    """One-sided ``level`` Clopper-Pearson lower bound: ``beta.ppf(1 - level, k, n - k + 1)``
    (0 when ``k == 0``; nan when ``n == 0``)."""
    k, n = _check(k, n)
    if n == 0:
        return math.nan
    if k == 0:
        return 0.0
    from scipy.special import betaincinv

    return float(betaincinv(k, n - k + 1, 1 - level))


def clopper_pearson(k: float, n: float, ci: float = 0.95) -> tuple[float, float]:
    """Two-sided exact interval of ``k / n`` with coverage at least ``ci``."""
    level = 0.5 + ci / 2
    return cp_lower(k, n, level), cp_upper(k, n, level)
