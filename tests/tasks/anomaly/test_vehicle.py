"""Tests for the vehicle-level DyAD evaluation protocol."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from src.stats.proportion import clopper_pearson
from src.tasks.anomaly.thresholds import conformal_threshold
from src.tasks.anomaly.vehicle import (
    H_GRID,
    binary_intervals,
    binary_metrics,
    bootstrap_auroc_ci,
    choose_h,
    evaluate_vehicles,
    vehicle_scores,
)

METRIC_KEYS = {
    "auroc",
    "auroc_ci_low",
    "auroc_ci_high",
    "auroc_mean",
    "recall",
    "recall_ci_low",
    "recall_ci_high",
    "false_alarm_rate",
    "false_alarm_rate_ci_low",
    "false_alarm_rate_ci_high",
    "precision",
    "f1",
    "accuracy",
    "n_flagged",
    "n_vehicles",
    "n_faulty",
    "threshold",
    "h",
    "n_calibration_normals",
}


def _fleet(rng, n_normal, n_faulty, prefix, n_snippets=40):
    """Cars whose faulty members have occasional large errors on top of the normal noise."""
    n_cars = n_normal + n_faulty
    ids = np.array([f"{prefix}{i:03d}" for i in range(n_cars)])
    faulty = np.arange(n_cars) >= n_normal
    cars = np.repeat(ids, n_snippets)
    spikes = (rng.random(cars.size) < 0.15) * np.repeat(faulty, n_snippets) * 2.0
    errors = rng.gamma(2.0, 1.0, cars.size) + spikes
    return errors, cars, pd.Series(faulty.astype(int), index=ids)


@pytest.fixture
def folds():
    rng = np.random.default_rng(7)
    parts = [
        _fleet(rng, 30, 6, "tune"),
        _fleet(rng, 20, 8, "test"),
        _fleet(rng, 5, 5, "other"),  # scored but in neither set
    ]
    errors = np.concatenate([p[0] for p in parts])
    cars = np.concatenate([p[1] for p in parts])
    labels = pd.concat([p[2] for p in parts])
    return errors, cars, labels, parts[0][2].index, parts[1][2].index


def _shuffled(errors, cars, seed=0):
    order = np.random.default_rng(seed).permutation(len(errors))
    return np.asarray(errors, dtype=float)[order], np.asarray(cars)[order]


# --- vehicle scores -------------------------------------------------------------------------


def test_vehicle_scores_match_hand_computation():
    errors = [1, 5, 3, 2] + [10] + list(range(1, 11))
    cars = ["A"] * 4 + ["B"] + ["C"] * 10
    errors, cars = _shuffled(errors, cars)
    expected = {
        500: [4.0, 10.0, 8.0],  # k = 2, 1 (floor 0 -> 1), 5
        50: [5.0, 10.0, 10.0],  # k = 1 everywhere
        950: [10 / 3, 10.0, 6.0],  # k = 3, 1, 9
        None: [2.75, 10.0, 5.5],
    }
    for h, values in expected.items():
        scores = vehicle_scores(errors, cars, h)
        assert scores.index.tolist() == ["A", "B", "C"]
        np.testing.assert_allclose(scores.to_numpy(), values)


def test_scores_for_a_full_fold_sort_once():
    # A realistic fold (500k snippets, 200 cars, string ids) runs all 19 h in one pass.
    rng = np.random.default_rng(0)
    ids = np.array([f"car{i:03d}" for i in range(200)])
    cars = ids[rng.integers(0, 200, 500_000)]
    errors = rng.random(cars.size)
    labels = pd.Series(np.arange(200) % 4 == 0, index=ids).astype(int)
    h, auroc = choose_h(errors, cars, labels)
    assert h in H_GRID and 0.0 <= auroc <= 1.0
    scores = vehicle_scores(errors, cars, 950)
    k = max(1, int(950 / 1000 * np.sum(cars == "car003")))
    assert scores["car003"] == pytest.approx(np.sort(errors[cars == "car003"])[::-1][:k].mean())


# --- choice of h ----------------------------------------------------------------------------


def test_h_ties_go_to_the_larger_h():
    # One snippet per car: every h gives the same scores, so every AUROC ties.
    cars = np.arange(6)
    labels = pd.Series([0, 0, 0, 1, 1, 1], index=cars)
    h, auroc = choose_h(np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0]), cars, labels)
    assert h == max(H_GRID)
    assert auroc == pytest.approx(8 / 9)


def test_h_picks_the_largest_of_the_best_fractions():
    # Faulty cars: one error of 10 among 20 zeros; normal cars: twenty 1s. Robust score 10/k
    # beats 1 while k = h/50 < 10, i.e. AUROC 1 for h <= 450 and 0.5 from h = 500 on.
    cars = np.repeat(np.arange(8), 20)
    errors = np.ones(cars.size)
    errors[cars >= 4] = 0.0
    errors[np.arange(4, 8) * 20] = 10.0
    labels = pd.Series([0] * 4 + [1] * 4, index=np.arange(8))
    assert choose_h(*_shuffled(errors, cars), labels) == (450, 1.0)


# --- binary metrics and AUROC ---------------------------------------------------------------


@pytest.mark.parametrize("threshold", [-1.0, 0.2, 0.5, 0.8, 2.0])
def test_binary_metrics_match_sklearn(threshold):
    rng = np.random.default_rng(3)
    labels = pd.Series(rng.integers(0, 2, 50), index=[f"car{i}" for i in range(50)])
    scores = pd.Series(rng.random(50) + 0.3 * labels.to_numpy(), index=labels.index[::-1])
    y, pred = labels.loc[scores.index], scores > threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = binary_metrics(scores, labels, threshold)
    fp, tn = int(np.sum(pred & (y == 0))), int(np.sum(~pred & (y == 0)))
    assert got["recall"] == pytest.approx(recall_score(y, pred, zero_division=0))
    assert got["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["false_alarm_rate"] == pytest.approx(fp / (fp + tn))


def test_binary_metrics_degenerate_cases_are_zero_not_nan():
    scores = pd.Series([0.1, 0.2, 0.3], index=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none_flagged = binary_metrics(scores, pd.Series([0, 1, 1], index=scores.index), 1.0)
        all_normal = binary_metrics(scores, pd.Series([0, 0, 0], index=scores.index), 0.0)
    assert none_flagged == {
        "recall": 0.0,
        "false_alarm_rate": 0.0,
        "precision": 0.0,
        "f1": 0.0,
        "accuracy": pytest.approx(1 / 3),
    }
    assert all_normal["recall"] == 0.0 and all_normal["false_alarm_rate"] == 1.0
    assert not any(np.isnan(v) for v in [*none_flagged.values(), *all_normal.values()])


def test_evaluation_aurocs_match_sklearn(folds):
    errors, cars, labels, tuning, test = folds
    result = evaluate_vehicles(errors, cars, labels, tuning, test, n_boot=50)
    rows = result.scores[result.scores["role"] == "test"]
    assert result.metrics["auroc"] == pytest.approx(roc_auc_score(rows.label, rows.robust_score))
    assert result.metrics["auroc_mean"] == pytest.approx(roc_auc_score(rows.label, rows.mean_score))
    tune = result.scores[result.scores["role"] == "tuning"]
    assert result.tuning_auroc == pytest.approx(roc_auc_score(tune.label, tune.robust_score))


def test_evaluation_result_shape(folds):
    errors, cars, labels, tuning, test = folds
    result = evaluate_vehicles(errors, cars, labels, tuning, test, n_boot=50)
    assert set(result.metrics) == METRIC_KEYS
    assert all(isinstance(v, float) for v in result.metrics.values())
    assert result.metrics["n_vehicles"] == len(test) == 28
    assert result.metrics["n_faulty"] == 8
    assert result.metrics["h"] == result.h and result.metrics["threshold"] == result.threshold
    table = result.scores
    assert list(table.columns) == [
        "car",
        "label",
        "role",
        "robust_score",
        "mean_score",
        "predicted",
    ]
    assert sorted(table.car) == sorted([*tuning, *test])  # the "other" cars are ignored
    assert (table.predicted == (table.robust_score > result.threshold)).all()
    rows = table[table.role == "test"].set_index("car")
    expected = binary_metrics(rows.robust_score, rows.label, result.threshold)
    assert {k: result.metrics[k] for k in expected} == expected


def test_binary_intervals_are_clopper_pearson_of_whole_cars():
    # 4 faulty cars, 3 flagged; 5 normal cars, 1 flagged.
    scores = pd.Series([9, 8, 7, 1, 6, 1, 1, 1, 1], index=list("abcdefghi"), dtype=float)
    labels = pd.Series([1, 1, 1, 1, 0, 0, 0, 0, 0], index=scores.index)
    got = binary_intervals(scores, labels, 5.0)
    assert (got["recall_ci_low"], got["recall_ci_high"]) == clopper_pearson(3, 4)
    assert (got["false_alarm_rate_ci_low"], got["false_alarm_rate_ci_high"]) == clopper_pearson(
        1, 5
    )
    assert got["recall_ci_low"] < 3 / 4 < got["recall_ci_high"]
    assert binary_intervals(scores, labels, math.inf)["false_alarm_rate_ci_low"] == 0.0


def test_evaluation_logs_the_intervals_of_its_own_operating_point(folds):
    errors, cars, labels, tuning, test = folds
    result = evaluate_vehicles(errors, cars, labels, tuning, test, n_boot=0)
    rows = result.scores[result.scores.role == "test"].set_index("car")
    expected = binary_intervals(rows.robust_score, rows.label, result.threshold)
    assert {k: result.metrics[k] for k in expected} == expected
    assert result.metrics["n_calibration_normals"] == 0.0 and "alpha" not in result.metrics


# --- conformal rule -------------------------------------------------------------------------


def _with_calibration(folds, n_calibration=20):
    """The ``folds`` fixture plus ``n_calibration`` normal calibration cars of its own."""
    errors, cars, labels, tuning, test = folds
    calibration = _fleet(np.random.default_rng(11), n_calibration, 0, "cal")
    errors = np.concatenate([errors, calibration[0]])
    cars = np.concatenate([cars, calibration[1]])
    return errors, cars, pd.concat([labels, calibration[2]]), tuning, test, calibration[2].index


def test_conformal_threshold_comes_from_the_calibration_cars_only(folds):
    errors, cars, labels, tuning, test, calibration = _with_calibration(folds)
    result = evaluate_vehicles(
        errors, cars, labels, tuning, test, "conformal", 0, calibration_cars=calibration
    )
    table = result.scores.set_index("car")
    cal = table.loc[calibration]
    assert (cal.role == "calibration").all() and (cal.label == 0).all()
    assert result.threshold == conformal_threshold(cal.robust_score, 0.05) == cal.robust_score.max()
    assert result.metrics["alpha"] == 0.05 and result.metrics["n_calibration_normals"] == 20.0
    # h is chosen without them: the same h as without calibration cars at all.
    plain = evaluate_vehicles(errors, cars, labels, tuning, test, n_boot=0)
    assert result.h == plain.h and result.tuning_auroc == plain.tuning_auroc
    # Test cars (and cars in no set) do not move it.
    moved = errors.copy()
    outside = ~np.isin(cars, [*calibration, *tuning])
    moved[outside] = np.random.default_rng(9).random(outside.sum()) * 1e3
    again = evaluate_vehicles(
        moved, cars, labels, tuning, test, "conformal", 0, calibration_cars=calibration
    )
    assert again.threshold == result.threshold


def test_conformal_with_too_few_calibration_cars_flags_nothing(folds):
    errors, cars, labels, tuning, test, calibration = _with_calibration(folds, 10)
    result = evaluate_vehicles(
        errors, cars, labels, tuning, test, "conformal", 0, calibration_cars=calibration
    )
    assert result.threshold == math.inf and result.metrics["n_flagged"] == 0.0
    assert result.metrics["false_alarm_rate"] == 0.0 == result.metrics["recall"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t, c, lab: dict(calibration_cars=[]), "needs calibration_cars"),
        (lambda t, c, lab: dict(calibration_cars=[*c, t[0]]), "two of tuning, test and cal"),
        (lambda t, c, lab: dict(calibration_cars=[*c, "other009"]), "must all be normal"),
        (lambda t, c, lab: dict(calibration_cars=[*c, "ghost"]), "need a label and snippets"),
    ],
)
def test_bad_calibration_cars_raise_value_error(folds, make, message):
    errors, cars, labels, tuning, test, calibration = _with_calibration(folds)
    kwargs = make(test, list(calibration), labels)
    with pytest.raises(ValueError, match=message) as info:
        evaluate_vehicles(errors, cars, labels, tuning, test, "conformal", 0, **kwargs)
    assert "\n" not in str(info.value)


# --- bootstrap ------------------------------------------------------------------------------


def _cars(n, seed):
    rng = np.random.default_rng(seed)
    labels = pd.Series(rng.integers(0, 2, n))
    return pd.Series(rng.normal(size=n) + labels.to_numpy()), labels


def test_bootstrap_matches_sklearn_per_resample():
    scores, labels = _cars(30, 1)
    idx = np.random.default_rng(4).integers(0, 30, size=(200, 30))
    aurocs = [
        roc_auc_score(labels.to_numpy()[i], scores.to_numpy()[i])
        for i in idx
        if 0 < labels.to_numpy()[i].sum() < 30
    ]
    expected = np.quantile(aurocs, [0.05, 0.95])
    got = bootstrap_auroc_ci(scores, labels, n_boot=200, ci=0.9, seed=4)
    np.testing.assert_allclose(got, expected)


def test_bootstrap_contains_point_is_seeded_and_narrows():
    scores, labels = _cars(40, 2)
    low, high = bootstrap_auroc_ci(scores, labels, seed=11)
    assert low <= roc_auc_score(labels, scores) <= high
    assert bootstrap_auroc_ci(scores, labels, seed=11) == (low, high)
    assert bootstrap_auroc_ci(scores, labels, seed=12) != (low, high)
    big_low, big_high = bootstrap_auroc_ci(*_cars(400, 2), seed=11)
    assert big_high - big_low < (high - low) / 2


def test_bootstrap_without_two_valid_resamples_is_nan():
    scores = pd.Series([0.1, 0.5, 0.9])
    assert np.isnan(bootstrap_auroc_ci(scores, pd.Series([1, 1, 1]))).all()
    assert np.isnan(bootstrap_auroc_ci(scores, pd.Series([0, 1, 1]), n_boot=1)).all()


# --- no leakage from test cars --------------------------------------------------------------


@pytest.mark.parametrize("rule", ["reference", "youden"])
def test_h_and_threshold_ignore_test_snippets(folds, rule):
    errors, cars, labels, tuning, test = folds
    before = evaluate_vehicles(errors, cars, labels, tuning, test, threshold_rule=rule, n_boot=20)
    perturbed = errors.copy()
    outside = ~np.isin(cars, tuning)  # test cars and cars in neither set
    perturbed[outside] = np.random.default_rng(9).random(outside.sum()) * 1e3
    after = evaluate_vehicles(perturbed, cars, labels, tuning, test, threshold_rule=rule, n_boot=20)
    assert (after.h, after.threshold, after.tuning_auroc) == (
        before.h,
        before.threshold,
        before.tuning_auroc,
    )
    tune_rows = [
        r[r.role == "tuning"].reset_index(drop=True) for r in (before.scores, after.scores)
    ]
    pd.testing.assert_frame_equal(*tune_rows)
    assert after.metrics["auroc"] != before.metrics["auroc"]


# --- input errors ---------------------------------------------------------------------------


def _bad_inputs(folds):
    errors, cars, labels, tuning, test = folds
    only_normal = [c for c in tuning if labels[c] == 0]
    only_faulty = [c for c in test if labels[c] == 1]
    return {
        "tuning_cars is empty": dict(tuning_cars=[]),
        "test_cars is empty": dict(test_cars=[]),
        "tuning_cars holds one class": dict(tuning_cars=only_normal),
        "test_cars holds one class": dict(test_cars=only_faulty),
        "in two of tuning, test": dict(test_cars=[*test, tuning[0]]),
        "no snippets": dict(
            test_cars=[*test, "ghost"], car_labels=pd.concat([labels, pd.Series({"ghost": 1})])
        ),
        "no label": dict(car_labels=labels.drop(test[0])),
        "must be 0 .normal. or 1": dict(car_labels=labels.replace({1: 2})),
        "threshold_rule must be": dict(threshold_rule="best"),
        "aligned 1-D arrays": dict(cars=cars[:-1]),
        "NaN or inf": dict(errors=np.where(np.arange(errors.size) == 3, np.nan, errors)),
        "missing ids": dict(cars=np.where(np.arange(cars.size) == 0, None, cars.astype(object))),
    }


@pytest.mark.parametrize(
    "message",
    [
        "tuning_cars is empty",
        "test_cars is empty",
        "tuning_cars holds one class",
        "test_cars holds one class",
        "in two of tuning, test",
        "no snippets",
        "no label",
        "must be 0 .normal. or 1",
        "threshold_rule must be",
        "aligned 1-D arrays",
        "NaN or inf",
        "missing ids",
    ],
)
def test_bad_inputs_raise_value_error(folds, message):
    errors, cars, labels, tuning, test = folds
    kwargs = dict(errors=errors, cars=cars, car_labels=labels, tuning_cars=tuning, test_cars=test)
    kwargs.update(_bad_inputs(folds)[message])
    with pytest.raises(ValueError, match=message) as info:
        evaluate_vehicles(**kwargs, n_boot=10)
    assert "\n" not in str(info.value)


def _realistic(rng, n_normal, n_faulty, prefix):
    """DyAD-scaled errors: normal cars around 0.01, faulty cars with 20 % of snippets at 0.05-0.1
    (the scale the reviewer saw: reference cuts 0.03-0.09, car scores 0.01-0.07)."""
    ids = np.array([f"{prefix}{i:03d}" for i in range(n_normal + n_faulty)])
    faulty = np.arange(len(ids)) >= n_normal
    cars = np.repeat(ids, 200)
    errors = rng.gamma(4.0, 0.0025, cars.size)
    spikes = (rng.random(cars.size) < 0.2) & np.repeat(faulty, 200)
    errors[spikes] += rng.uniform(0.05, 0.1, spikes.sum())
    return errors, cars, pd.Series(faulty.astype(int), index=ids)


def test_the_default_car_level_rule_flags_the_faulty_cars_the_reference_cut_flags_none():
    rng = np.random.default_rng(3)
    tune, test = _realistic(rng, 40, 8, "tune"), _realistic(rng, 20, 6, "test")
    errors, cars = np.concatenate([tune[0], test[0]]), np.concatenate([tune[1], test[1]])
    labels = pd.concat([tune[2], test[2]])
    default = evaluate_vehicles(errors, cars, labels, tune[2].index, test[2].index, n_boot=0)
    assert default.threshold_rule == "normal_max"
    assert default.metrics["recall"] == 1.0 and default.metrics["false_alarm_rate"] == 0.0
    assert default.metrics["n_flagged"] == 6.0
    youden = evaluate_vehicles(
        errors, cars, labels, tune[2].index, test[2].index, threshold_rule="youden", n_boot=0
    )
    assert youden.metrics["recall"] == 1.0 and youden.metrics["false_alarm_rate"] == 0.0
    reference = evaluate_vehicles(
        errors, cars, labels, tune[2].index, test[2].index, threshold_rule="reference", n_boot=0
    )
    car_scores = reference.scores.set_index("car").robust_score
    assert reference.threshold > car_scores.max()  # a snippet-tail error above every car score
    assert reference.metrics["n_flagged"] == 0.0 and reference.metrics["recall"] == 0.0
    assert reference.metrics["auroc"] == default.metrics["auroc"] == 1.0  # same ranking
