"""The search loop with a stand-in launcher: ``pytest tests/search/test_loop.py``."""

from types import SimpleNamespace

import numpy as np
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
    """A stand-in trial: more sparsity, more speed, further from the baseline, a larger drop."""
    drop = 0.05 * sparsity
    return {
        "tuning/auroc": 1.0,  # saturated, as on the default data
        "baseline/tuning/auroc": 1.0,
        "tuning/separation": 0.95 - drop,
        "baseline/tuning/separation": 0.95,
        "tuning/fidelity_shift": 0.2 * sparsity,
        "test/auroc": 0.9 - drop,
        "baseline/test/auroc": 0.9,
        "delta/auroc_ci_low": -drop - 0.01,
        "delta/auroc_ci_high": -drop + 0.01,
        "latency/speedup_bs1": 1 + 4 * sparsity,
        "latency/speedup_bs1_ci_low": 0.9 + 4 * sparsity,
        "size/ratio": 1 - sparsity,
        "latency/onnxruntime/speedup_bs1": 2 + 4 * sparsity,
    }


class Launcher:
    """Runs a batch by reading each trial's sparsity; ``fail`` trials raise; ``alter(number,
    metrics)`` may change what a trial logs."""

    def __init__(self, fail=(), alter=None):
        self.batches, self.fail, self.alter = [], set(fail), alter

    def __call__(self, batch, first):
        self.batches.append((first, batch))
        out = []
        for i, overrides in enumerate(batch):
            if first + i in self.fail:
                out.append(SimpleNamespace(status=JobStatus.FAILED, _return_value="boom\nmore"))
                continue
            given = dict(o.split("=", 1) for o in overrides if o.startswith("method.sparsity"))
            sparsity = float(given.get("method.sparsity", 0.1))
            metrics = _metrics(sparsity)
            if self.alter is not None:
                metrics = self.alter(first + i, metrics)
            result = {"run_id": f"run{first + i}", "metrics": metrics, "method": {}}
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
    assert "verdict" not in report.trials  # no trial's test verdict was read
    assert report.confirmatory["verdict"] == "no paired table" and report.confirmatory["k"] == 1
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


TEST_KEYS = ("test/auroc", "delta/auroc_ci_low", "delta/auroc_ci_high")


@pytest.mark.parametrize("goals", [Goals(max_drop=0.02, min_speedup_bs1=3.5), Goals(max_drop=1e-4)])
def test_permuting_the_trials_test_figures_changes_neither_the_stop_nor_the_choice(goals):
    """Each trial logs another trial's test figures (or none): the search stops after the same
    trial and chooses the same one, whose verdict alone is then read (confirmatory, k = 1)."""

    def run(alter):
        spec = SearchSpec(trials=12, sampler="random", space=SPACE)
        scoring = Scoring("test/auroc", goals=goals, paired="auroc")
        trials = SearchLoop(spec, scoring, Launcher(alter=alter), []).run()
        read = []

        def tables(run_id):
            read.append(run_id)
            return None

        report = build_report(trials, scoring, [], tables)
        return len(trials), report.chosen["trial"], read

    shuffled = np.random.default_rng(3).permutation(12)
    others = {n: _metrics(0.1 + 0.07 * int(shuffled[n])) for n in range(12)}

    def swapped(number, metrics):
        return {**metrics, **{k: others[number][k] for k in TEST_KEYS}}

    def dropped(number, metrics):
        return {k: v for k, v in metrics.items() if k not in TEST_KEYS}

    first = run(None)
    assert run(swapped) == first == run(dropped)
    assert len(first[2]) == 1  # one confirmatory look, at the chosen trial's table


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


def test_the_front_is_timed_again_together_before_the_choice():
    spec = SearchSpec(trials=6, parallel=3, sampler="random", space=SPACE, timing={})
    calls = []

    def time_batch(run_ids):
        calls.append(list(run_ids))
        return {
            r: {"timing/eager/speedup_bs1": 2.0, "timing/eager/speedup_bs1_ci_low": 1.5}
            for r in run_ids
        }

    loop = SearchLoop(spec, Scoring("test/auroc"), Launcher(), [], time_batch)
    trials = loop.run()
    before = build_report(trials, Scoring("test/auroc"), []).trials
    front = loop.retime_front()
    assert len(calls) == 3 and calls[-1] == front == before[before.on_front].run_id.tolist()
    assert len(front) >= 2
    assert SearchLoop(spec, Scoring("test/auroc"), Launcher(), []).retime_front() == []


class Killed(Exception):
    """Stands for a SIGKILL: the search process dies inside a launch."""


def test_a_killed_search_resumes_its_stored_study_and_runs_no_trial_twice(tmp_path):
    from src.search.storage import StudyRef, open_storage

    url = f"sqlite:///{tmp_path}/mlflow-optuna.db"
    spec = SearchSpec(trials=6, parallel=2, sampler="random", space=SPACE)
    logged = {}  # run id -> metrics: what the tracking store holds

    class Dying(Launcher):
        def __init__(self, die_at=None):
            super().__init__()
            self.die_at = die_at

        def __call__(self, batch, first):
            if first == self.die_at:  # the third batch: asked, then killed before it was told
                raise Killed
            out = super().__call__(batch, first)
            logged.update({r.return_value["run_id"]: r.return_value["metrics"] for r in out})
            return out

    ref = StudyRef(open_storage(url), "search-x", lambda run_id: logged[run_id])
    with pytest.raises(Killed):
        SearchLoop(spec, Scoring("test/auroc"), Dying(die_at=4), [], study=ref).run()
    launcher = Dying()
    again = SearchLoop(spec, Scoring("test/auroc"), launcher, [], study=ref)
    assert [t.run_id for t in again.trials] == ["run0", "run1", "run2", "run3"]
    assert again.trials[0].metrics == logged["run0"]  # read back from the store
    trials = again.run()
    assert len(trials) == 6 and [first for first, _ in launcher.batches] == [4]
    launched = [tuple(t.overrides) for t in trials]
    assert len(set(launched)) == 6  # every candidate once
    states = [t.state.name for t in again.study.trials]
    assert states.count("FAIL") == 2  # the two the kill left running
    stored = optuna.load_study(study_name="search-x", storage=url)
    assert sum("overrides" in t.user_attrs for t in stored.trials) == 6
    done = SearchLoop(spec, Scoring("test/auroc"), Launcher(), [], study=ref)
    assert len(done.trials) == 6 and done.run() == done.trials  # the budget is spent: no launch
    bigger = SearchSpec(trials=8, parallel=2, sampler="random", space=SPACE)
    met = Scoring("test/auroc", goals=Goals(min_speedup_bs1=0.5))  # every trial meets it
    assert SearchLoop(bigger, met, Launcher(), [], study=ref).run() == done.trials  # it had ended
    more = SearchLoop(bigger, Scoring("test/auroc"), Dying(), [], study=ref).run()
    assert len(more) == 8  # a larger budget extends it


def test_without_stopping_at_the_goals_the_whole_budget_runs_and_the_met_are_marked():
    spec = SearchSpec(trials=6, parallel=2, sampler="random", space=SPACE, stop_at_goals=False)
    goals = Goals(min_speedup_bs1=0.5)  # every trial meets it
    trials = SearchLoop(spec, Scoring("test/auroc", goals=goals), Launcher(), []).run()
    table = build_report(trials, Scoring("test/auroc", goals=goals), []).trials
    assert len(trials) == 6 and table.meets_goals.all()
