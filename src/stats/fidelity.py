"""Fidelity: does a variant answer like its baseline, unit by unit? Label-free, so it uses every
unit the data has (all vehicles, every snippet, every test image), not only the labelled test
split an AUROC verdict rests on.

- :func:`vehicle_fidelity`: decision flips (each model at its own threshold, and the variant at
  the baseline's) with a one-sided 97.5 % Clopper-Pearson bound, Kendall tau-b and Spearman of
  the scores, the largest decision-margin shift against the smallest baseline margin, and exact
  McNemar on the labelled test units' correctness.
- :func:`snippet_change`: relative reconstruction-error change per snippet (median, 99th
  percentile) with a bootstrap that resamples vehicles and keeps their snippets.
- :func:`output_fidelity`: prediction flips, agreement and mean KL divergence of two
  classifiers' output distributions.
- :func:`fidelity_verdict`: one run's logged ``fidelity/*`` metrics in a verdict and a reason.

A flip is "these units got another answer"; it makes no claim on which answer is right (that is
the task verdict's job): compressed models often keep accuracy while changing many individual
answers (Dutta et al., NeurIPS 2024, *Accuracy is Not All You Need*).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from src.core import schema
from src.stats.discordance import mcnemar_exact
from src.stats.proportion import cp_upper

BEHAVES, DIFFERS = "behaves like its baseline", "differs"
NOT_SHOWN, NOT_MEASURED = "not shown", "not measured"
FIDELITY_LIMIT = 0.05  # the flip rate "behaves like its baseline" bounds (97.5 % one-sided)


def flip_counts(before: np.ndarray, after: np.ndarray, name: str) -> dict[str, float]:
    """``name`` (units whose 0/1 decision or class changed) and its Clopper-Pearson bound."""
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError("before and after must be aligned 1-D arrays")
    k = int(np.sum(before != after))
    return {name: float(k), schema.flips_bound(name): cp_upper(k, len(before))}


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their mean rank (as ``scipy.stats.rankdata``)."""
    x = np.asarray(x, dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (nan for a constant input)."""
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else math.nan


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (ties in either input corrected for); O(n^2), for vehicle counts."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    upper = np.triu_indices(len(x), k=1)
    sx = np.sign(x[:, None] - x[None, :])[upper]
    sy = np.sign(y[:, None] - y[None, :])[upper]
    den = math.sqrt(float(np.sum(sx != 0)) * float(np.sum(sy != 0)))
    return float(np.sum(sx * sy) / den) if den > 0 else math.nan


def margins(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Decision margin ``log(score / threshold)`` per unit: > 0 flagged, <= 0 not."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(scores, dtype=float) / float(threshold))


def margin_shift(
    base_scores: np.ndarray, var_scores: np.ndarray, base_threshold: float, var_threshold: float
) -> dict[str, float]:
    """The largest margin shift ``max |d_v - d_b|`` against the smallest baseline margin
    ``min |d_b|``, each model at its own threshold. When the shift is the smaller, no unit off
    the baseline's threshold can flip. A unit exactly on it (``normal_max`` puts the top normal
    tuning car there) is left out of the minimum: its margin is 0 by construction. Empty when a
    score or threshold is not positive and finite (no logarithm)."""
    d_b, d_v = margins(base_scores, base_threshold), margins(var_scores, var_threshold)
    if not (np.all(np.isfinite(d_b)) and np.all(np.isfinite(d_v))) or len(d_b) == 0:
        return {}
    off = np.abs(d_b[d_b != 0])
    return {
        schema.FIDELITY_MARGIN_SHIFT: float(np.max(np.abs(d_v - d_b))),
        schema.FIDELITY_MARGIN_MIN: float(off.min()) if len(off) else math.nan,
    }


def vehicle_fidelity(
    base_scores: np.ndarray,
    var_scores: np.ndarray,
    base_threshold: float,
    var_threshold: float,
    labels: np.ndarray,
    is_test: np.ndarray,
) -> dict[str, float]:
    """Fidelity of vehicle scores (flagged when ``score > threshold``), all aligned per vehicle.

    Args:
        base_scores, var_scores: Each model's score of every vehicle (tuning and test).
        base_threshold, var_threshold: Each model's own threshold.
        labels: 0/1 per vehicle; only McNemar reads them, on the ``is_test`` vehicles.
        is_test: Which vehicles are test vehicles.
    """
    b, v = np.asarray(base_scores, dtype=float), np.asarray(var_scores, dtype=float)
    n = len(b)
    flagged_b, flagged_v = b > base_threshold, v > var_threshold
    metrics = flip_counts(flagged_b, flagged_v, schema.FIDELITY_FLIPS)
    metrics.update(flip_counts(flagged_b, v > base_threshold, schema.FIDELITY_FLIPS_AT_BASELINE))
    metrics[schema.FIDELITY_N_UNITS] = float(n)
    metrics[schema.FIDELITY_FLIP_RATE] = metrics[schema.FIDELITY_FLIPS] / n if n else math.nan
    metrics[schema.FIDELITY_KENDALL] = kendall_tau_b(b, v)
    metrics[schema.FIDELITY_SPEARMAN] = spearman(b, v)
    metrics.update(margin_shift(b, v, base_threshold, var_threshold))
    test, y = np.asarray(is_test, dtype=bool), np.asarray(labels).astype(bool)
    metrics[schema.FIDELITY_MCNEMAR] = mcnemar_exact(
        flagged_b[test] == y[test], flagged_v[test] == y[test]
    )
    return metrics


_QUANTILES = ((schema.FIDELITY_SNIPPET_MEDIAN, 0.5), (schema.FIDELITY_SNIPPET_P99, 0.99))


def _quantiles(sorted_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The inverted-CDF :data:`_QUANTILES` of ``sorted_values``, each repeated ``weights``
    times (a bootstrap replicate without copying its snippets)."""
    cumulative = np.cumsum(weights)
    wanted = np.array([q for _, q in _QUANTILES]) * cumulative[-1]
    return sorted_values[np.searchsorted(cumulative, wanted, side="left")]


def snippet_change(
    base_errors: np.ndarray,
    var_errors: np.ndarray,
    clusters: np.ndarray,
    n_boot: int = 500,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, float]:
    """Relative error change ``|e_v - e_b| / e_b`` per snippet: its median and 99th percentile
    (inverted CDF), each with a percentile interval from resampling the ``clusters`` (vehicles)
    with all their snippets: a vehicle's snippets move together. Snippets with ``e_b <= 0`` are
    left out; empty when none is left."""
    e_b, e_v = np.asarray(base_errors, dtype=float), np.asarray(var_errors, dtype=float)
    keep = e_b > 0
    if not keep.any():
        return {}
    change = np.abs(e_v[keep] - e_b[keep]) / e_b[keep]
    _, cluster = np.unique(np.asarray(clusters)[keep], return_inverse=True)
    order = np.argsort(change, kind="stable")
    values, cluster = change[order], cluster[order]
    found = _quantiles(values, np.ones(len(values)))
    metrics = {name: float(x) for (name, _), x in zip(_QUANTILES, found, strict=True)}
    if n_boot > 0:
        metrics.update(_cluster_interval(values, cluster, n_boot, seed, ci))
    return metrics


def _cluster_interval(
    values: np.ndarray, cluster: np.ndarray, n_boot: int, seed: int, ci: float
) -> dict[str, float]:
    """Percentile interval of :data:`_QUANTILES` over vehicles drawn with replacement."""
    rng = np.random.default_rng(seed)
    n = int(cluster.max()) + 1
    draws = np.empty((n_boot, len(_QUANTILES)))
    for i in range(n_boot):
        draws[i] = _quantiles(values, np.bincount(rng.integers(0, n, n), minlength=n)[cluster])
    ends = np.quantile(draws, [0.5 - ci / 2, 0.5 + ci / 2], axis=0)
    metrics = {}
    for j, (name, _) in enumerate(_QUANTILES):
        low, high = schema.interval(name)
        metrics[low], metrics[high] = float(ends[0, j]), float(ends[1, j])
    return metrics


def mean_kl(base_logp: np.ndarray, var_logp: np.ndarray) -> float:
    """Mean over rows of KL(baseline || variant) from aligned log-probabilities (NaN: no row)."""
    lb, lv = np.asarray(base_logp, dtype=float), np.asarray(var_logp, dtype=float)
    if len(lb) == 0:
        return math.nan
    p_b = np.exp(lb)
    with np.errstate(invalid="ignore"):  # a class the baseline gives 0 adds nothing
        terms = np.where(p_b > 0, p_b * (lb - lv), 0.0)
    return float(terms.sum(axis=1).mean())


def output_fidelity(
    base_pred: np.ndarray,
    var_pred: np.ndarray,
    base_logp: np.ndarray,
    var_logp: np.ndarray,
    labels: np.ndarray,
) -> dict[str, float]:
    """Fidelity of two classifiers on the same images (rows aligned).

    Args:
        base_pred, var_pred: Each model's predicted class per image.
        base_logp, var_logp: Their log-probabilities, images x classes.
        labels: The true class per image (McNemar on correctness only).
    """
    lb, lv = np.asarray(base_logp, dtype=float), np.asarray(var_logp, dtype=float)
    if lb.shape != lv.shape or lb.ndim != 2:
        raise ValueError("base_logp and var_logp must be aligned (images x classes) arrays")
    n = len(lb)
    metrics = flip_counts(base_pred, var_pred, schema.FIDELITY_FLIPS)
    metrics[schema.FIDELITY_N_UNITS] = float(n)
    rate = metrics[schema.FIDELITY_FLIPS] / n if n else math.nan
    metrics[schema.FIDELITY_FLIP_RATE], metrics[schema.FIDELITY_AGREEMENT] = rate, 1 - rate
    metrics[schema.FIDELITY_KL] = mean_kl(lb, lv)
    y = np.asarray(labels)
    metrics[schema.FIDELITY_MCNEMAR] = mcnemar_exact(
        np.asarray(base_pred) == y, np.asarray(var_pred) == y
    )
    return metrics


def _finite(values: Mapping[str, float], name: str) -> float | None:
    value = values.get(name)
    return None if value is None or not math.isfinite(float(value)) else float(value)


_FLIP_COUNTS = (
    ("at their own thresholds", schema.FIDELITY_FLIPS),
    ("at the baseline's", schema.FIDELITY_FLIPS_AT_BASELINE),
)


def fidelity_verdict(values: Mapping[str, float]) -> tuple[str, str]:
    """The fidelity verdict of one method run from its logged ``fidelity/*`` metrics.

    ``behaves like its baseline`` when the 97.5 % Clopper-Pearson bound of the share of units
    whose decision flips (each model at its own threshold: the decisions each would deploy) is
    at most :data:`FIDELITY_LIMIT` and, where margins exist (vehicle scores), the largest margin
    shift is below the smallest baseline margin. Otherwise ``differs`` when a unit flips, or
    ``not shown`` when none does but the units are too few (or the margins too tight) to bound
    it; ``not measured`` without fidelity metrics (a baseline, an older run). Flips of the
    variant at the baseline's threshold are stated, not judged: under ``normal_max`` that
    threshold is one tuning car's own score, which flips whenever that score rises at all.

    Returns:
        ``(verdict, reason)``; the reason says what is and is not claimed.
    """
    n = _finite(values, schema.FIDELITY_N_UNITS)
    counts = {
        label: (_finite(values, name), _finite(values, schema.flips_bound(name)))
        for label, name in _FLIP_COUNTS
        if None not in (_finite(values, name), _finite(values, schema.flips_bound(name)))
    }
    if not n or _FLIP_COUNTS[0][0] not in counts:
        return NOT_MEASURED, "no fidelity/* metrics (a baseline, or a run logged before them)"
    flips, bound = counts[_FLIP_COUNTS[0][0]]
    said = "; ".join(
        f"{k:.0f}/{n:.0f} units flip {label} (bound {high:.3f})"
        for label, (k, high) in counts.items()
    )
    shift = _finite(values, schema.FIDELITY_MARGIN_SHIFT)
    margin = _finite(values, schema.FIDELITY_MARGIN_MIN)
    tight = shift is not None and margin is not None and shift >= margin
    if shift is not None and margin is not None:
        sign = ">=" if tight else "<"
        said += f"; largest margin shift {shift:.3g} {sign} smallest baseline margin {margin:.3g}"
    if bound <= FIDELITY_LIMIT and not tight:
        return BEHAVES, (
            f"{said}: at most {FIDELITY_LIMIT:.0%} of units flip (97.5 % one-sided), assuming "
            "unseen units are perturbed like these; not an AUROC or accuracy non-inferiority claim"
        )
    if flips > 0:
        return DIFFERS, f"{said}: these units got other answers (which is right is not judged)"
    if bound > FIDELITY_LIMIT:
        return NOT_SHOWN, f"{said}: bound > {FIDELITY_LIMIT}, too few units to bound the flips"
    return NOT_SHOWN, f"{said}: a unit nearer the threshold than these could flip"
