"""What a search may select on without the test split: figures of the tuning split that move.

On the default data the tuning split pits about 48 in-sample normal vehicles against 2-3 faulty
ones, and every candidate scores tuning AUROC 1.0: an objective on it is flat. Two figures that
are not:

- :func:`soft_auroc`: the mean over (positive, negative) pairs of a logistic step of their
  standardised log-score difference: AUROC's pair count with the step smoothed, so a variant
  that moves a faulty vehicle towards the normals loses some of it before any pair reorders.
- :func:`median_log_shift`: the median over units of ``|d_v - d_b|``, the shift of each unit's
  log score against its model's median (a threshold may be +inf on a small fleet, so it is not
  the reference): label-free, 0 for a model against itself, rising with any change of the
  scores but a uniform rescaling.
"""

from __future__ import annotations

import math

import numpy as np


def soft_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of ``sigmoid((log s_p - log s_n) / sd)`` over every positive p and negative n, with
    ``sd`` the negatives' standard deviation of log score (so the figure does not depend on the
    scores' scale). 0.5 for no separation; it approaches AUROC as the classes move apart but
    stays below 1, and moves with every score.

    Returns:
        NaN without a positive, with fewer than two negatives, with equal negatives or with a
        score that is not positive and finite.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(s)
    if not np.all(np.isfinite(z)) or y.sum() < 1 or (~y).sum() < 2:
        return math.nan
    sd = float(np.std(z[~y], ddof=1))
    if not sd > 0:
        return math.nan
    gaps = (z[y][:, None] - z[~y][None, :]) / sd
    return float(np.mean(0.5 * (1.0 + np.tanh(gaps / 2.0))))  # the logistic, without overflow


def median_log_shift(base_scores: np.ndarray, var_scores: np.ndarray) -> float:
    """Median over units of ``|d_v - d_b|``, ``d = log(score) - median(log(score))`` of each
    model's own units: how far each unit moved against the rest, whatever the scores' scale (a
    threshold set by either model's own rule moves with a uniform rescaling). NaN when a score
    is not positive and finite, or there is no unit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z_b, z_v = np.log(np.asarray(base_scores, float)), np.log(np.asarray(var_scores, float))
    if len(z_b) == 0 or not (np.all(np.isfinite(z_b)) and np.all(np.isfinite(z_v))):
        return math.nan
    return float(np.median(np.abs((z_v - np.median(z_v)) - (z_b - np.median(z_b)))))
