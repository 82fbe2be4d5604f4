"""The anomaly task: its vehicle protocol settings and its fidelity:
``python -m pytest tests/tasks/anomaly/test_task.py``."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from src.core import schema
from src.core.errors import ConfigError
from src.tasks import EvalResult, create_task
from src.tasks.anomaly.task import VehicleProtocol
from src.tasks.anomaly.vehicle import evaluate_vehicles

TASK = create_task({"name": "anomaly"})
LABEL_FREE = (
    schema.FIDELITY_FLIPS,
    schema.FIDELITY_FLIPS_AT_BASELINE,
    schema.FIDELITY_N_UNITS,
    schema.FIDELITY_KENDALL,
    schema.FIDELITY_MARGIN_SHIFT,
    schema.FIDELITY_MARGIN_MIN,
    schema.FIDELITY_SNIPPET_MEDIAN,
    schema.FIDELITY_SNIPPET_P99,
)


def fleet(n_cars: int = 30, per_car: int = 20, seed: int = 0):
    """Snippet errors of ``n_cars`` vehicles (every third faulty), their labels and roles."""
    rng = np.random.default_rng(seed)
    labels = pd.Series((np.arange(n_cars) % 3 == 0).astype(int), index=np.arange(n_cars) + 100)
    cars = np.repeat(labels.index.to_numpy(), per_car)
    errors = rng.gamma(2.0, 1.0, cars.size) * (1 + labels.loc[cars].to_numpy())
    tuning, test = list(labels.index[: n_cars // 2]), list(labels.index[n_cars // 2 :])
    return errors.astype(np.float32), cars, labels, tuning, test


def scored(errors, cars, labels, tuning, test) -> EvalResult:
    """What ``AnomalyTask.evaluate`` returns for these snippet errors (its fidelity tables)."""
    found = evaluate_vehicles(errors, cars, labels, tuning, test, n_boot=0)
    snippets = pd.DataFrame({"row": np.arange(len(errors)), "car": cars, "error": errors})
    tables = {schema.VEHICLE_SCORES_TABLE: found.scores, schema.SNIPPET_ERRORS_TABLE: snippets}
    return EvalResult({"test/threshold": found.threshold}, tables)


def test_a_variant_identical_to_its_baseline_keeps_every_answer():
    base = scored(*fleet())
    found = TASK.fidelity(scored(*fleet()), base, seed=0)
    assert found[schema.FIDELITY_FLIPS] == 0 and found[schema.FIDELITY_N_UNITS] == 30
    assert found[schema.FIDELITY_KENDALL] == 1 and found[schema.FIDELITY_MARGIN_SHIFT] == 0
    assert found[schema.FIDELITY_SNIPPET_P99] == 0 and found[schema.FIDELITY_MCNEMAR] == 1
    low, high = schema.interval(schema.FIDELITY_SNIPPET_MEDIAN)
    assert {low, high, schema.FIDELITY_SPEARMAN, schema.FIDELITY_FLIP_RATE} <= set(found)
    assert found[schema.TUNING_SHIFT] == 0 and found[schema.TUNING_RANK_CHANGE] == 0
    assert all(k.startswith((schema.FIDELITY, schema.TUNING)) for k in found)


def test_the_tuning_shift_tells_apart_what_tuning_auroc_ties_and_grows_with_noise():
    """The search's objective: candidates that all separate the tuning vehicles perfectly
    (AUROC 1.0) still get distinct values, rising with the noise put into their scores; only the
    tuning vehicles count, and labels do not."""
    errors, cars, labels, tuning, test = fleet()
    errors = errors * (1 + 4 * labels.loc[cars].to_numpy(np.float32))  # faulty far above
    base = scored(errors, cars, labels, tuning, test)
    shifts = []
    for sigma in (0.02, 0.05, 0.1, 0.2):
        noise = np.random.default_rng(1).normal(0, 1, errors.size).astype(np.float32)
        var = scored(errors * np.exp(sigma * noise), cars, labels, tuning, test)
        assert var.tables[schema.VEHICLE_SCORES_TABLE].pipe(_tuning_auroc) == 1.0
        shifts.append(TASK.fidelity(var, base, seed=0)[schema.TUNING_SHIFT])
    assert 0 < shifts[0] < shifts[1] < shifts[2] < shifts[3]
    noisy_test = np.where(np.isin(cars, test), errors * 3, errors).astype(np.float32)
    var = scored(noisy_test, cars, labels, tuning, test)
    assert TASK.fidelity(var, base, seed=0)[schema.TUNING_SHIFT] == pytest.approx(0, abs=1e-6)


def _tuning_auroc(scores: pd.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score

    tuning = scores[scores.role == "tuning"]
    return roc_auc_score(tuning.label, tuning.robust_score)


def test_flips_follow_the_scores_and_labels_do_not_matter():
    errors, cars, labels, tuning, test = fleet()
    base = scored(errors, cars, labels, tuning, test)
    noisy = errors * np.random.default_rng(1).lognormal(0, 0.5, errors.size).astype(np.float32)
    var = scored(noisy, cars, labels, tuning, test)
    found = TASK.fidelity(var, base, seed=0)
    table = var.tables[schema.VEHICLE_SCORES_TABLE].set_index("car")
    own = (table.robust_score > var.metrics["test/threshold"]).to_numpy()
    ref = base.tables[schema.VEHICLE_SCORES_TABLE].set_index("car").loc[table.index]
    expected = np.sum(own != (ref.robust_score > base.metrics["test/threshold"]).to_numpy())
    assert found[schema.FIDELITY_FLIPS] == expected > 0
    assert found[schema.FIDELITY_SNIPPET_MEDIAN] > 0
    for result in (base, var):  # the same permutation of the vehicles' labels in both tables
        scores = result.tables[schema.VEHICLE_SCORES_TABLE]
        scores["label"] = np.random.default_rng(5).permutation(scores.label.to_numpy())
    again = TASK.fidelity(var, base, seed=0)
    assert {k: again[k] for k in LABEL_FREE} == {k: found[k] for k in LABEL_FREE}


def test_a_logged_baseline_gives_the_same_figures_and_one_without_tables_none():
    errors, cars, labels, tuning, test = fleet()
    base = scored(errors, cars, labels, tuning, test)
    var = scored(errors * np.float32(1.01), cars, labels, tuning, test)
    # as RunStore.read_table gives a logged table back
    logged = {
        name: pd.read_csv(io.StringIO(table.to_csv(index=False)), dtype={"unit": str})
        for name, table in base.tables.items()
    }
    read_back = EvalResult(dict(base.metrics), logged)
    assert TASK.fidelity(var, read_back, seed=3) == TASK.fidelity(var, base, seed=3)
    older = EvalResult(dict(base.metrics), {})  # logged before these tables existed
    assert TASK.fidelity(var, older, seed=0) == {}
    without_snippets = EvalResult(base.metrics, {k: logged[k] for k in ["vehicle_scores"]})
    partial = TASK.fidelity(var, without_snippets, seed=0)
    assert schema.FIDELITY_FLIPS in partial and schema.FIDELITY_SNIPPET_MEDIAN not in partial


def test_the_default_holds_normals_out_and_normal_max_is_the_paper_protocol():
    default = create_task({"name": "anomaly"})
    assert default.evaluation.threshold_rule == "conformal" and default.evaluation.alpha == 0.05
    assert default.held_out_normals == 0.4
    paper = create_task({"name": "anomaly", "evaluation": {"threshold_rule": "normal_max"}})
    assert paper.held_out_normals == 0  # one key: nothing held out, every normal trained on
    for rule in ("youden", "reference"):
        assert VehicleProtocol(threshold_rule=rule, calibration_normals=3).held_out_normals == 0
    assert VehicleProtocol(calibration_normals=20).held_out_normals == 20


def test_the_board_knows_the_operating_point_intervals():
    names = {m.name: m for m in create_task({"name": "anomaly"}).metrics}
    for end in schema.interval("test/recall"):
        assert names[end].higher_is_better
    for end in schema.interval("test/false_alarm_rate"):
        assert not names[end].higher_is_better


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alpha": 0}, r"task.evaluation.alpha=0 must be a number in \(0, 1\)"),
        ({"alpha": 1.2}, r"alpha=1.2 must be"),
        ({"alpha": "low"}, r"alpha='low' must be"),
        ({"alpha": True}, r"alpha=True must be"),
        ({"calibration_normals": 0}, "needs a count >= 1 or a share"),
        ({"calibration_normals": 1.5}, r"a share must be in \(0, 1\)"),
        ({"calibration_normals": 10}, "hold out at least 19 normal cars, or raise alpha to 0.0909"),
        ({"calibration_normals": 5, "alpha": 0.1}, "at least 9 normal cars"),
    ],
)
def test_a_bad_setting_is_one_config_error_that_says_what_to_fix(settings, message):
    with pytest.raises(ConfigError, match=message) as info:
        VehicleProtocol(**settings)
    assert "\n" not in str(info.value)


def test_counts_that_reach_alpha_and_other_rules_pass():
    VehicleProtocol(calibration_normals=19)
    VehicleProtocol(calibration_normals=9, alpha=0.1)
    VehicleProtocol(threshold_rule="normal_max", calibration_normals=0)  # unused: not checked
