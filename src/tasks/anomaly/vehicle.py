"""Vehicle-level evaluation of DyAD snippet scores (Zhang et al., Nature Communications 2023).

A model scores each charging snippet; labels exist only per car. Each fold has TUNING cars (the
training cars plus some faulty cars) and disjoint TEST cars. The robust-score fraction ``h`` and
the threshold are chosen on tuning cars only and then applied unchanged to the test cars, so test
snippets can never leak into either choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from src.core import schema
from src.stats.proportion import clopper_pearson
from src.tasks.anomaly.thresholds import (
    conformal_threshold,
    normal_max_threshold,
    reference_threshold,
    youden_threshold,
)

H_GRID: tuple[int, ...] = tuple(range(50, 1000, 50))
# Car-level thresholds on car-level scores (src.tasks.anomaly.thresholds): ``conformal`` (the
# task's default: from held-out normal cars, at a stated false-alarm level), ``normal_max`` (the
# paper's protocol) and ``youden``; ``reference`` reproduces the DyAD notebooks' snippet-level
# cut (see :func:`~src.tasks.anomaly.thresholds.reference_cut`).
THRESHOLD_RULES: tuple[str, ...] = ("conformal", "normal_max", "youden", "reference")


@dataclass(frozen=True)
class _SortedErrors:
    """Each car's errors sorted once (largest first) so that any top-k mean is one reduceat."""

    cars: np.ndarray  # unique car ids, sorted
    errors: np.ndarray  # grouped by car, descending within a car, plus one trailing 0
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def build(cls, errors: np.ndarray, cars: np.ndarray) -> _SortedErrors:
        codes, uniq = pd.factorize(cars, sort=True)  # hashing: far faster than np.unique on str
        order = np.lexsort((-errors, codes))
        counts = np.bincount(codes, minlength=len(uniq))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        # The trailing 0 keeps the end bound of the last car a valid reduceat index.
        return cls(uniq, np.append(errors[order], 0.0), starts, counts)

    def scores(self, h: int | None) -> pd.Series:
        """Mean of each car's top ``max(1, int(h/1000 * n))`` errors; ``h=None`` averages all."""
        k = self.counts if h is None else np.maximum(1, np.floor(h / 1000 * self.counts))
        bounds = np.column_stack((self.starts, self.starts + k.astype(np.int64))).ravel()
        # Even slots sum [start, start + k) of one car; odd slots span gaps and are dropped.
        sums = np.add.reduceat(self.errors, bounds)[::2]
        name = "mean_score" if h is None else "robust_score"
        return pd.Series(sums / k, index=pd.Index(self.cars, name="car"), name=name)


def _as_snippets(errors: np.ndarray, cars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    errors, cars = np.asarray(errors, dtype=np.float64), np.asarray(cars)
    if errors.ndim != 1 or errors.shape != cars.shape:
        raise ValueError(
            f"errors and cars must be aligned 1-D arrays; got shapes {errors.shape}, {cars.shape}"
        )
    if pd.isna(cars).any():
        raise ValueError("cars contain missing ids; give every snippet a car id or drop it")
    if not np.isfinite(errors).all():
        raise ValueError("errors contain NaN or inf; fix or drop those snippets before evaluating")
    return errors, cars


def vehicle_scores(errors: np.ndarray, cars: np.ndarray, h: int | None) -> pd.Series:
    """Per-car score from snippet errors.

    Args:
        errors: Reconstruction error of each snippet.
        cars: Car id of each snippet, aligned with ``errors``.
        h: Robust fraction in thousandths (mean of the top ``max(1, int(h/1000 * n))`` errors of
            a car with ``n`` snippets), or ``None`` for the mean over all the car's snippets.

    Returns:
        Scores indexed by car id (sorted).
    """
    return _SortedErrors.build(*_as_snippets(errors, cars)).scores(h)


def _choose_h(sorted_errors: _SortedErrors, labels: pd.Series) -> tuple[int, float]:
    y = labels.loc[sorted_errors.cars].to_numpy()
    best_h, best_auroc = H_GRID[0], -np.inf
    for h in H_GRID:
        auroc = float(roc_auc_score(y, sorted_errors.scores(h).to_numpy()))
        if auroc >= best_auroc:  # ">=" hands ties to the larger h
            best_h, best_auroc = h, auroc
    return best_h, best_auroc


def choose_h(errors: np.ndarray, cars: np.ndarray, car_labels: pd.Series) -> tuple[int, float]:
    """Pick the robust fraction ``h`` in :data:`H_GRID` with the best car-level AUROC.

    Args:
        errors: Snippet errors of the tuning cars only.
        cars: Car id of each snippet.
        car_labels: Car id -> 0/1 (1 = faulty); must cover every car in ``cars``.

    Returns:
        ``(h, auroc)``; ties go to the larger ``h``.
    """
    return _choose_h(_SortedErrors.build(*_as_snippets(errors, cars)), car_labels)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def binary_metrics(scores: pd.Series, labels: pd.Series, threshold: float) -> dict[str, float]:
    """Car-level metrics when a car is flagged faulty iff ``score > threshold``.

    Args:
        scores: Car scores indexed by car id.
        labels: Car id -> 0/1, covering ``scores.index``.
        threshold: Decision threshold.

    Returns:
        ``recall``, ``false_alarm_rate``, ``precision``, ``f1``, ``accuracy`` (0.0 when undefined).
    """
    y = labels.loc[scores.index].to_numpy().astype(bool)
    pred = scores.to_numpy() > threshold
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
    return {
        "recall": _ratio(tp, tp + fn),
        "false_alarm_rate": _ratio(fp, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, len(y)),
    }


def binary_intervals(
    scores: pd.Series, labels: pd.Series, threshold: float, ci: float = 0.95
) -> dict[str, float]:
    """Exact (Clopper-Pearson) intervals of the recall (flagged among faulty cars) and the
    false-alarm rate (flagged among normal cars), each a proportion of whole cars: with 10
    faulty and 12 normal test cars they move in steps of 0.1 and 0.083, and say so.

    Returns:
        ``recall_ci_low``, ``recall_ci_high``, ``false_alarm_rate_ci_low``,
        ``false_alarm_rate_ci_high`` (nan for a class with no car).
    """
    y = labels.loc[scores.index].to_numpy().astype(bool)
    pred = scores.to_numpy() > threshold
    out = {}
    for name, members in (("recall", y), ("false_alarm_rate", ~y)):
        low, high = clopper_pearson(int(np.sum(pred & members)), int(members.sum()), ci)
        out.update(zip(schema.interval(name), (low, high), strict=True))
    return out


def bootstrap_auroc_ci(
    scores: pd.Series, labels: pd.Series, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUROC, resampling cars with replacement.

    Args:
        scores: Car scores indexed by car id.
        labels: Car id -> 0/1, covering ``scores.index``.
        n_boot: Number of resamples; those with a single class are skipped.
        ci: Coverage of the interval.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when fewer than 2 resamples hold both classes.
    """
    s = scores.to_numpy(dtype=np.float64)
    y = labels.loc[scores.index].to_numpy().astype(np.float64)
    idx = np.random.default_rng(seed).integers(0, len(s), size=(n_boot, len(s)))
    ys, n_pos = y[idx], y[idx].sum(axis=1)
    valid = (n_pos > 0) & (n_pos < len(s))
    if valid.sum() < 2:
        return float("nan"), float("nan")
    # Mann-Whitney U with average ranks equals roc_auc_score (ties count 1/2), for all rows at once.
    ranks, ys, n_pos = rankdata(s[idx[valid]], axis=1), ys[valid], n_pos[valid]
    aurocs = ((ranks * ys).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * (len(s) - n_pos))
    alpha = (1 - ci) / 2
    low, high = np.quantile(aurocs, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class VehicleEvaluation:
    """Outcome of :func:`evaluate_vehicles`.

    Attributes:
        h: Robust fraction (thousandths) chosen on tuning cars.
        threshold: Decision threshold, from the tuning cars (``conformal``: the calibration
            cars); ``+inf`` when no car is to be flagged.
        threshold_rule: One of :data:`THRESHOLD_RULES`.
        tuning_auroc: AUROC of the robust score at ``h`` on tuning cars.
        metrics: Test-car metrics (MLflow names).
        scores: One row per tuning, calibration and test car: ``car``, ``label``, ``role``
            (``tuning``, ``calibration``, ``test``), ``robust_score``, ``mean_score``,
            ``predicted``.
    """

    h: int
    threshold: float
    threshold_rule: str
    tuning_auroc: float
    metrics: dict[str, float]
    scores: pd.DataFrame


def _car_set(cars: Iterable, name: str, labels: pd.Series, present: np.ndarray) -> np.ndarray:
    ids = np.unique(np.asarray(list(cars)))
    missing_label = ids[~np.isin(ids, labels.index)]
    no_snippets = ids[~np.isin(ids, present)]
    if ids.size == 0:
        raise ValueError(f"{name} is empty; pass at least one normal and one faulty car")
    if missing_label.size:
        raise ValueError(f"{name} cars {missing_label.tolist()} have no label; add to car_labels")
    if no_snippets.size:
        raise ValueError(f"{name} cars {no_snippets.tolist()} have no snippets; drop them")
    if not labels.loc[ids].isin([0, 1]).all():
        raise ValueError(f"{name} labels must be 0 (normal) or 1 (faulty); fix car_labels")
    if labels.loc[ids].nunique() < 2:
        raise ValueError(f"{name} holds one class only; it needs normal and faulty cars")
    return ids


def _calibration_set(cars: Iterable, labels: pd.Series, present: np.ndarray, rule: str):
    ids = np.unique(np.asarray(list(cars)))
    if rule == "conformal" and ids.size == 0:
        raise ValueError("threshold_rule='conformal' needs calibration_cars (held-out normals)")
    if ids.size == 0:
        return ids
    if not np.isin(ids, labels.index).all() or not np.isin(ids, present).all():
        raise ValueError("calibration_cars need a label and snippets each; drop the others")
    if (labels.loc[ids] != 0).any():
        raise ValueError("calibration_cars must all be normal (label 0); they place a threshold")
    return ids


def _validated(present, car_labels, tuning_cars, test_cars, calibration_cars, rule):
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}, got {rule!r}")
    if not car_labels.index.is_unique:
        raise ValueError("car_labels has duplicate car ids; keep one label per car")
    tuning = _car_set(tuning_cars, "tuning_cars", car_labels, present)
    test = _car_set(test_cars, "test_cars", car_labels, present)
    calibration = _calibration_set(calibration_cars, car_labels, present, rule)
    sets = np.concatenate([tuning, test, calibration])
    shared = pd.Index(sets)[pd.Index(sets).duplicated()].unique()
    if len(shared):
        raise ValueError(
            f"cars {shared.tolist()} are in two of tuning, test and calibration; make them disjoint"
        )
    return car_labels.loc[sets].astype(np.int64), tuning, test, calibration


def _test_metrics(
    robust: pd.Series,
    mean: pd.Series,
    labels: pd.Series,
    threshold: float,
    h: int,
    ci: float,
    **boot,
) -> dict[str, float]:
    y = labels.loc[robust.index]
    low, high = bootstrap_auroc_ci(robust, labels, ci=ci, **boot)
    low_name, high_name = schema.interval("auroc")
    return {
        "auroc": float(roc_auc_score(y, robust)),
        low_name: low,
        high_name: high,
        "auroc_mean": float(roc_auc_score(y, mean.loc[robust.index])),
        **binary_metrics(robust, labels, threshold),
        **binary_intervals(robust, labels, threshold, ci),
        "n_flagged": float((robust > threshold).sum()),
        "n_vehicles": float(len(y)),
        "n_faulty": float(y.sum()),
        "threshold": float(threshold),
        "h": float(h),
    }


def _score_rows(
    sorted_errors: _SortedErrors, h: int, labels: pd.Series, role: str, threshold: float
) -> pd.DataFrame:
    robust = sorted_errors.scores(h)
    frame = pd.concat([robust, sorted_errors.scores(None)], axis=1).reset_index()
    frame.insert(1, "label", labels.loc[robust.index].to_numpy())
    frame.insert(2, "role", role)
    frame["predicted"] = frame["robust_score"].to_numpy() > threshold
    return frame


def evaluate_vehicles(
    errors: np.ndarray,
    cars: np.ndarray,
    car_labels: pd.Series,
    tuning_cars: Iterable,
    test_cars: Iterable,
    threshold_rule: str = "normal_max",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    calibration_cars: Iterable = (),
    alpha: float = 0.05,
) -> VehicleEvaluation:
    """Choose ``h`` and the threshold on tuning (and calibration) cars, then score the test cars
    with them.

    Args:
        errors: Snippet errors over all scored snippets (cars in no set are ignored).
        cars: Car id of each snippet, aligned with ``errors``.
        car_labels: Car id -> 0/1 (1 = faulty).
        tuning_cars: Cars used to choose ``h`` (and the threshold but for ``conformal``).
        test_cars: Held-out cars, disjoint from ``tuning_cars``.
        threshold_rule: ``"conformal"`` (from the calibration cars at level ``alpha``, see
            :func:`conformal_threshold`), ``"normal_max"`` (above every normal tuning car, the
            paper's protocol), ``"youden"`` (car-level J on tuning cars) or ``"reference"``
            (the notebooks' snippet-rank cut, see
            :func:`~src.tasks.anomaly.thresholds.reference_cut`).
        n_boot: Bootstrap resamples for the test AUROC interval.
        ci: Coverage of that interval and of the recall and false-alarm intervals.
        seed: Bootstrap seed.
        calibration_cars: Normal cars the model did not train on, in neither other set: they
            place the ``conformal`` threshold and nothing else (scored, shown in the table).
        alpha: The ``conformal`` rule's false-alarm level.

    Returns:
        The chosen ``h`` and threshold, test metrics and a per-car score table.

    Raises:
        ValueError: Bad inputs, empty/one-class/overlapping sets, cars without snippets or label,
            a faulty calibration car, or ``conformal`` without calibration cars.
    """
    errors, cars = _as_snippets(errors, cars)
    codes, present = pd.factorize(cars)  # per-car membership is far cheaper than per-snippet
    labels, tuning, test, calibration = _validated(
        present, car_labels, tuning_cars, test_cars, calibration_cars, threshold_rule
    )
    roles = {"tuning": tuning, "calibration": calibration, "test": test}
    masks = {role: np.isin(present, ids)[codes] for role, ids in roles.items() if ids.size}
    parts = {role: _SortedErrors.build(errors[m], cars[m]) for role, m in masks.items()}
    h, tuning_auroc = _choose_h(parts["tuning"], labels)
    if threshold_rule == "reference":
        faulty = np.isin(present, labels.index[labels == 1])[codes[masks["tuning"]]]
        threshold = reference_threshold(errors[masks["tuning"]], faulty)
    else:
        scores = {role: part.scores(h) for role, part in parts.items() if role != "test"}
        threshold = _car_threshold(threshold_rule, alpha, scores, labels)
    robust, mean = parts["test"].scores(h), parts["test"].scores(None)
    metrics = _test_metrics(robust, mean, labels, threshold, h, ci, n_boot=n_boot, seed=seed)
    metrics["n_calibration_normals"] = float(calibration.size)
    if threshold_rule == "conformal":
        metrics["alpha"] = float(alpha)
    table = pd.concat(
        [_score_rows(part, h, labels, role, threshold) for role, part in parts.items()],
        ignore_index=True,
    )
    return VehicleEvaluation(h, threshold, threshold_rule, tuning_auroc, metrics, table)


def _car_threshold(rule: str, alpha: float, scores: dict, labels: pd.Series) -> float:
    """The car-level rules; ``scores``: car scores at the chosen h, by role."""
    if rule == "conformal":
        return conformal_threshold(scores["calibration"], alpha)
    if rule == "youden":
        return youden_threshold(scores["tuning"], labels)
    return normal_max_threshold(scores["tuning"], labels)
