"""The search loop with a stand-in launcher: ``pytest tests/search/test_loop.py``."""

from types import SimpleNamespace

import optuna
import pytest
from hydra.core.utils import JobStatus

from src.core.errors import ConfigError
from src.search.loop import SearchLoop, SearchSpec, suggest
from src.search.report import build_report
from src.search.scoring import Goals, Scoring

PRUNE = {"sparsity": {"low": 0.3, "high": 0.9}, "allocation": ["uniform", "sensitivity"]}
SPACE = {"dynamic": {}, "prune": {"method": PRUNE}}


def test_spec_is_validated():
    with pytest.raises(ConfigError, match="trials"):
        SearchSpec(trials=0, space=SPACE)
    with pytest.raises(ConfigError, match="sampler"):
        SearchSpec(sampler="grid", space=SPACE)
    with pytest.raises(ConfigError, match="space is empty"):
        SearchSpec()
    with pytest.raises(ConfigError, match="prune.method.sparsity"):
        SearchSpec(space={"prune": {"method": {"sparsity": {"low": 0.9, "high": 0.3}}}})
    with pytest.raises(ConfigError, match="search.methods"):
        SearchSpec(space=SPACE, methods=["qat"])
    assert list(SearchSpec(space=SPACE, methods=["prune"]).space) == ["prune"]


def test_suggest_turns_a_trial_into_overrides_of_its_methods_own_parameters():
    trial = optuna.trial.FixedTrial(
        {"method": "prune", "prune:method.sparsity": 0.5, "prune:method.allocation": "sensitivity"}
    )
    space = SearchSpec(space=SPACE).space
    assert space["prune"]["method.sparsity"] == {"low": 0.3, "high": 0.9}
    assert suggest(trial, space) == [
        "+method=prune",
        "method.sparsity=0.5",
        "method.allocation=sensitivity",
    ]
    assert suggest(optuna.trial.FixedTrial({"method": "dynamic"}), space) == ["+method=dynamic"]


def _metrics(sparsity: float) -> dict:
    """A stand-in trial: more sparsity, more speed and a larger drop."""
    drop = 0.05 * sparsity
    return {
        "tuning/auroc": 0.9 - drop,
        "baseline/tuning/auroc": 0.9,
        "delta/auroc_ci_low": -drop - 0.01,
        "delta/auroc_ci_high": -drop + 0.01,
        "latency/speedup_bs1": 1 + 4 * sparsity,
        "size/ratio": 1 - sparsity,
        "latency/onnxruntime/speedup_bs1": 2 + 4 * sparsity,
    }


class Launcher:
    """Runs a batch by reading each trial's sparsity; ``fail`` trials raise."""

    def __init__(self, fail=()):
        self.batches, self.fail = [], set(fail)

    def __call__(self, batch, first):
        self.batches.append((first, batch))
        out = []
        for i, overrides in enumerate(batch):
            if first + i in self.fail:
                out.append(SimpleNamespace(status=JobStatus.FAILED, _return_value="boom\nmore"))
                continue
            given = dict(o.split("=", 1) for o in overrides if o.startswith("method.sparsity"))
            sparsity = float(given.get("method.sparsity", 0.1))
            result = {"run_id": f"run{first + i}", "metrics": _metrics(sparsity), "method": {}}
            out.append(SimpleNamespace(status=JobStatus.COMPLETED, return_value=result))
        return out


def test_the_loop_stops_at_the_first_trial_that_meets_every_goal():
    spec = SearchSpec(trials=30, parallel=2, sampler="random", space=SPACE)
    goals = Goals(max_drop=0.04, min_speedup_bs1=3.0)
    launcher = Launcher(fail={1})
    loop = SearchLoop(spec, Scoring("test/auroc", goals=goals), launcher, ["model=dyad_tiny"])
    trials = loop.run()
    assert len(trials) < 30 and len(trials) % 2 == 0  # stopped after a whole batch
    assert [first for first, _ in launcher.batches] == list(range(0, len(trials), 2))
    assert all(
        b[0] == "model=dyad_tiny" and b[-1] == "benchmark.runtimes=[eager]"
        for _, batch in launcher.batches
        for b in batch
    )
    assert trials[1].error == "boom" and loop.study.trials[1].state.name == "FAIL"
    report = build_report(trials, Scoring("test/auroc", goals=goals), ["model=dyad_tiny"])
    assert report.chosen is not None and bool(report.chosen["meets_goals"])
    assert report.command.startswith("python -m src.train model=dyad_tiny +method=prune")
    assert "benchmark.runtimes" not in report.command
    assert report.trials.on_front.any() and report.trials.chosen.sum() == 1


def test_without_a_trial_meeting_the_goals_the_budget_ends_it_and_the_front_is_reported():
    spec = SearchSpec(trials=4, sampler="tpe", space=SPACE, runtime="onnxruntime")
    scoring = Scoring(
        "test/auroc", runtime="onnxruntime", goals=Goals(max_drop=0.0001, min_speedup_bs1=100.0)
    )
    launcher = Launcher()
    trials = SearchLoop(spec, scoring, launcher, []).run()
    assert len(trials) == 4
    assert launcher.batches[0][1][0][-1] == "benchmark.runtimes=[eager,onnxruntime]"
    report = build_report(trials, scoring, [])
    assert "no trial met every goal" in report.why and report.chosen is not None
    assert report.chosen["speedup"] >= 2  # the runtime's own speedup


def test_a_candidate_is_run_once_and_a_spent_space_ends_the_search():
    spec = SearchSpec(trials=6, parallel=2, sampler="random", space={"dynamic": {}, "static": {}})
    launcher = Launcher()
    loop = SearchLoop(spec, Scoring("test/auroc"), launcher, [])
    trials = loop.run()
    launched = [tuple(b) for _, batch in launcher.batches for b in batch]
    assert len(trials) == 2 and len(set(launched)) == 2  # each recipe once, then no more
    told = [t for t in loop.study.trials if t.state.name == "COMPLETE"]
    assert len(told) > 2  # the repeats were told the first run's values, not run


def test_a_timed_batch_is_scored_on_its_fresh_process_speed_and_says_so():
    """The timer's ``timing/*`` figures replace each trial's in-run speed before Optuna is told."""
    spec = SearchSpec(trials=4, parallel=2, sampler="random", space=SPACE, timing={})
    timed_batches = []

    def time_batch(run_ids):
        timed_batches.append(list(run_ids))
        return {r: {"timing/eager/speedup_bs1": 10.0 + i} for i, r in enumerate(run_ids)}

    loop = SearchLoop(spec, Scoring("test/auroc"), Launcher(fail={1}), [], time_batch)
    trials = loop.run()
    assert timed_batches == [["run0"], ["run2", "run3"]]  # finished runs only, batch by batch
    told = [t.values[1] for t in loop.study.trials if t.state.name == "COMPLETE"]
    assert told == [10.0, 10.0, 11.0]
    table = build_report(trials, Scoring("test/auroc"), []).trials
    assert set(table.speed_from.dropna()) == {"fresh processes"}
    untimed = build_report(trials[:1], Scoring("test/auroc", runtime="onnxruntime"), []).trials
    assert untimed.speed_from.tolist() == ["within one process"]  # no pass for that runtime


def test_search_timing_is_checked_before_anything_runs():
    with pytest.raises(ConfigError, match="search.timing: unknown keys"):
        SearchSpec(space=SPACE, timing={"procs": 3})
    with pytest.raises(ConfigError, match="search.timing: .*processes"):
        SearchSpec(space=SPACE, timing={"processes": 1})
