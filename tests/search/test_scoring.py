"""Objectives, goals and hypervolume of a search: ``pytest tests/search/test_scoring.py``."""

import itertools

import numpy as np
import pandas as pd
import pytest

from src.core.errors import ConfigError
from src.search.scoring import Goals, Scoring, as_minimised, front_of, hypervolume

TRIAL = {  # what a trial run logs (test/auroc task, eager runtime)
    "tuning/auroc": 1.0,
    "baseline/tuning/auroc": 1.0,
    "tuning/separation": 0.90,
    "baseline/tuning/separation": 0.92,
    "tuning/fidelity_shift": 0.04,
    "tuning/loss": 0.3,
    "test/auroc": 0.95,
    "baseline/test/auroc": 0.96,
    "delta/auroc_ci_low": -0.005,
    "delta/auroc_ci_high": 0.01,
    "latency/speedup_bs1": 3.0,
    "latency/speedup_bs1_ci_low": 2.6,
    "latency/speedup_bs1_ci_high": 3.4,
    "latency/speedup_bsN": 1.5,
    "latency/speedup_bsN_ci_low": 1.2,
    "latency/onnxruntime/speedup_bs1": 5.0,
    "size/ratio": 0.3,
}


def test_goals_are_parsed_for_the_tasks_own_metric():
    goals = Goals.parse({"max_auroc_drop": 0.01, "min_speedup_bs1": 4}, "test/auroc")
    assert goals == Goals(max_drop=0.01, min_speedup_bs1=4.0)
    with pytest.raises(ConfigError, match="max_auroc_drop"):
        Goals.parse({"max_accuracy_drop": 0.01}, "test/auroc")
    assert Goals.parse(None, "test/auroc").empty()


def test_objectives_come_from_the_runs_own_metrics():
    scoring = Scoring("test/auroc", goals=Goals(max_drop=0.03, min_speedup_bs1=2.0))
    values = scoring.objectives(TRIAL)
    assert values == pytest.approx({"fidelity": 0.04, "speedup": 3.0, "size": 0.3})
    assert Scoring("test/auroc", runtime="onnxruntime").objectives(TRIAL)["speedup"] == 5.0
    assert scoring.change(TRIAL) == pytest.approx(-0.02)  # the tuning separation's
    assert Scoring("test/auroc", select_on="test").change(TRIAL) == pytest.approx(-0.01)
    assert scoring.unmet(TRIAL) == []
    strict = Scoring("test/auroc", goals=Goals(max_drop=0.01, min_speedup_bs1=2.8))
    assert strict.unmet(TRIAL) == [
        "tuning separation drop 0.02 > 0.01",
        "speedup bs1 lower bound 2.6 < 2.8",  # the point estimate 3.0 would have met it
    ]
    with pytest.raises(ConfigError, match="select_on"):
        Scoring("test/auroc", select_on="val")


def test_a_search_on_tuning_never_reads_a_test_figure():
    """Every test figure changed, or gone: objectives, goals and figures stay as they were."""
    scoring = Scoring("test/auroc", goals=Goals(max_drop=0.03, min_speedup_bs1=2.0))
    tuning_only = {k: v for k, v in TRIAL.items() if "test/" not in k and "delta/" not in k}
    for metrics in (TRIAL, tuning_only):
        assert scoring.objectives(metrics) == scoring.objectives(TRIAL)
        assert scoring.unmet(metrics) == [] and scoring.tuning_figures(metrics)
    with pytest.raises(RuntimeError, match="selects on tuning"):
        scoring.test_verdict(TRIAL, 1)


def test_a_search_on_test_judges_each_verdict_at_alpha_over_k():
    scoring = Scoring("test/auroc", select_on="test", goals=Goals(max_drop=0.01))
    # [-0.005, 0.01] is non-inferior at 0.01 for one look; after 100 looks it is not
    assert scoring.test_verdict(TRIAL, 1) == "non-inferior"
    assert scoring.test_verdict(TRIAL, 100) == "inconclusive"
    trial = {**TRIAL, "test/auroc": 0.955}  # a drop of 0.005
    assert scoring.unmet(trial, 1) == [] and scoring.unmet(trial, 100) == [
        "test verdict at alpha/100: inconclusive"
    ]


def test_the_confirmatory_verdict_is_recomputed_from_the_paired_table_at_alpha_over_k():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(40), np.ones(8)].astype(int)
    base = rng.normal(0, 1, 48) + 2.5 * labels
    table = pd.DataFrame(
        {"unit": np.arange(48), "label": labels, "baseline": base, "variant": base + 0.01}
    )
    scoring = Scoring("test/auroc", goals=Goals(max_drop=0.05), paired="auroc")
    same = scoring.confirm(table)
    assert same["verdict"].startswith("identical") and same["k"] == 1
    table["variant"] = base + rng.normal(0, 0.4, 48)
    one, many = scoring.confirm(table, 1), scoring.confirm(table, 50)
    assert many["alpha"] == pytest.approx(0.025 / 50) and one["alpha"] == 0.025
    assert many["ci_low"] < one["ci_low"] <= one["difference"] <= one["ci_high"] < many["ci_high"]
    assert scoring.confirm(None)["verdict"] == "no paired table"


def test_hypervolume_is_exact():
    reference = np.array([1.0, 1.0])
    assert hypervolume(np.array([[0.5, 0.5]]), reference) == pytest.approx(0.25)
    two = np.array([[0.2, 0.6], [0.6, 0.2]])  # union of two boxes: 0.32 + 0.32 - 0.16
    assert hypervolume(two, reference) == pytest.approx(0.48)
    assert hypervolume(np.array([[1.5, 0.1]]), reference) == 0.0  # beyond the reference


def test_hypervolume_matches_a_grid_count_in_three_dimensions():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, size=(7, 3))
    reference = np.ones(3)
    grid = (np.arange(40) + 0.5) / 40
    cells = np.array(list(itertools.product(grid, grid, grid)))
    dominated = (cells[:, None, :] >= points[None]).all(axis=2).any(axis=1)
    assert hypervolume(points, reference) == pytest.approx(dominated.mean(), abs=0.01)


def test_front_and_minimised_view():
    trials = pd.DataFrame(
        {"fidelity": [0.0, 0.1, 0.01], "speedup": [1.0, 4.0, 0.5], "size": [1.0, 0.3, 1.0]}
    )
    assert front_of(trials).tolist() == [True, True, False]
    assert as_minimised(trials)[1].tolist() == [0.1, -4.0, 0.3]


def test_an_analysis_is_listed_for_its_task_and_never_counted():
    from src.board import is_counted
    from src.board.meta import analysis_notes

    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "status": ["FINISHED"] * 3,
            "tags.method": ["sensitivity", "dynamic", "sensitivity"],
            "tags.analysis": ["sensitivity", None, "sensitivity"],
            "tags.task": ["anomaly", "anomaly", "classification"],
            "tags.baseline_run_id": ["base", "base", "other"],
            "tags.sensitivity.most_sensitive": [
                "outputs2embedding (prune:0.9: tuning loss +7.8%)",
                None,
                None,
            ],
        }
    )
    assert is_counted(runs).tolist() == [False, True, False]
    (note,) = analysis_notes(runs, pd.DataFrame({"task": ["anomaly"]}))
    assert note.startswith("sensitivity of baseline run base: run a") and "+7.8%" in note


def test_the_speedup_objective_prefers_the_timing_pass_over_the_in_run_figure():
    scoring = Scoring("test/auroc", goals=Goals(min_speedup_bs1=2.5, min_speedup_bsN=1.0))
    assert scoring.speed_from(TRIAL) == "within one process"
    timed = {
        **TRIAL,
        "timing/eager/speedup_bs1": 2.6,
        "timing/eager/speedup_bs1_ci_low": 2.4,
        "timing/eager/speedup_bsN": 1.1,
        "timing/eager/speedup_bsN_ci_low": 0.9,
    }
    assert scoring.objectives(timed)["speedup"] == 2.6 and scoring.speed_from(timed).startswith(
        "fresh"
    )
    assert scoring.unmet(timed) == [
        "speedup bs1 lower bound 2.4 < 2.5",
        "speedup bsN lower bound 0.9 < 1",
    ]
    nan = {**TRIAL, "timing/eager/speedup_bs1": float("nan")}  # a pass that could not time it
    assert scoring.objectives(nan)["speedup"] == 3.0
