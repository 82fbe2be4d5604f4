"""DeLong's comparison of two correlated AUROCs (DeLong, DeLong and Clarke-Pearson 1988, in Sun
and Xu's 2014 fast form), and the Student t helpers of its small-sample interval.

The per-unit *structural components* (``V10`` of a positive: the share of negatives it outscores;
``V01`` of a negative: the share of positives that outscore it) are what DeLong's variance is
made of; :mod:`src.stats.power` reuses their paired differences.

Only :mod:`scipy.special` is loaded, inside the t helpers: the leaderboard stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def psi(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """P x N kernel of the Mann-Whitney AUROC: 1 when the positive scores higher, 1/2 on a tie."""
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def t_sf(x: float, df: float) -> float:
    """``P(T > x)`` for Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtr

    return float(stdtr(df, -x))


def component_differences(
    labels: np.ndarray, baseline: np.ndarray, variant: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Variant minus baseline structural components: ``(d10 per positive, d01 per negative)``.

    Their means both equal ``AUROC(variant) - AUROC(baseline)``.
    """
    y = np.asarray(labels).astype(bool)
    out = []
    for scores in (np.asarray(baseline, dtype=float), np.asarray(variant, dtype=float)):
        kernel = psi(scores[y], scores[~y])
        out.append((kernel.mean(axis=1), kernel.mean(axis=0)))
    return out[1][0] - out[0][0], out[1][1] - out[0][1]


@dataclass(frozen=True)
class DeLong:
    """DeLong's paired comparison of two AUROCs on the same cases (``variant - baseline``).

    ``p_value`` is two-sided (no difference; nan when ``se == 0`` but the AUROCs differ, which
    only degenerate inputs produce); ``ci_low``/``ci_high`` are the normal (Wald) interval.
    ``n_pos``/``n_neg`` give the t interval's ``df = min(n_pos, n_neg) - 1``.
    """

    auroc_baseline: float
    auroc_variant: float
    difference: float
    se: float
    p_value: float
    ci_low: float
    ci_high: float
    n_pos: int = 0
    n_neg: int = 0

    @property
    def df(self) -> int:
        """Degrees of freedom of the small-sample t interval: ``min(P, N) - 1``."""
        return min(self.n_pos, self.n_neg) - 1


def delong_paired(
    labels: np.ndarray, baseline: np.ndarray, variant: np.ndarray, ci: float = 0.95
) -> DeLong:
    """DeLong's test of ``AUROC(variant) - AUROC(baseline)`` on the same labelled cases.

    Args:
        labels: 0/1 per case (both classes present).
        baseline: The baseline's score per case (higher = more likely positive).
        variant: The variant's score per case.
        ci: Coverage of the normal interval of the difference.

    Raises:
        ValueError: Fewer than two cases of a class, or misaligned inputs.
    """
    y = np.asarray(labels).astype(bool)
    scores = [np.asarray(baseline, dtype=float), np.asarray(variant, dtype=float)]
    if any(s.shape != y.shape for s in scores) or y.ndim != 1:
        raise ValueError("labels, baseline and variant must be aligned 1-D arrays")
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 cases of each class, got {m} and {n}")
    aucs = [float(psi(s[y], s[~y]).mean()) for s in scores]
    d10, d01 = component_differences(y, *scores)
    var = d10.var(ddof=1) / m + d01.var(ddof=1) / n
    diff, se = aucs[1] - aucs[0], math.sqrt(max(var, 0.0))
    if se == 0:  # no spread: nothing to test against, unless nothing differs at all
        p = 1.0 if diff == 0 else math.nan
    else:
        p = math.erfc(abs(diff) / se / math.sqrt(2))  # two-sided: 2 * P(Z > |z|)
    half = NormalDist().inv_cdf(0.5 + ci / 2) * se  # stdlib: the board needs no scipy
    return DeLong(aucs[0], aucs[1], float(diff), se, p, diff - half, diff + half, m, n)
