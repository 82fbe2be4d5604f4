"""Objectives, goals and hypervolume of a search: ``pytest tests/search/test_scoring.py``."""

import itertools

import numpy as np
import pandas as pd
import pytest

from src.core.errors import ConfigError
from src.search.scoring import Goals, Scoring, as_minimised, front_of, hypervolume

TRIAL = {  # what a trial run logs (test/auroc task, eager runtime)
    "tuning/auroc": 0.90,
    "baseline/tuning/auroc": 0.92,
    "delta/auroc_ci_low": -0.005,
    "delta/auroc_ci_high": 0.01,
    "latency/speedup_bs1": 3.0,
    "latency/speedup_bsN": 1.5,
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
    assert values == pytest.approx({"task": -0.02, "speedup": 3.0, "size": 0.3})
    assert Scoring("test/auroc", runtime="onnxruntime").objectives(TRIAL)["speedup"] == 5.0
    assert Scoring("test/auroc", select_on="test").objectives(TRIAL)["task"] != -0.02
    assert scoring.verdict(TRIAL) == "non-inferior" and scoring.unmet(TRIAL) == []
    strict = Scoring("test/auroc", goals=Goals(max_drop=0.004, min_speedup_bs1=4.0))
    missed = strict.unmet(TRIAL)
    assert len(missed) == 3 and any("verdict inconclusive" in m for m in missed)
    with pytest.raises(ConfigError, match="select_on"):
        Scoring("test/auroc", select_on="val")


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
        {"task": [0.0, -0.1, -0.01], "speedup": [1.0, 4.0, 0.5], "size": [1.0, 0.3, 1.0]}
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
    timed = {**TRIAL, "timing/eager/speedup_bs1": 2.0, "timing/eager/speedup_bsN": 0.9}
    assert scoring.objectives(timed)["speedup"] == 2.0 and scoring.speed_from(timed).startswith(
        "fresh"
    )
    assert scoring.unmet(timed) == ["speedup 2 < 2.5", "speedup 0.9 < 1"]
    nan = {**TRIAL, "timing/eager/speedup_bs1": float("nan")}  # a pass that could not time it
    assert scoring.objectives(nan)["speedup"] == 3.0
