"""Sweeps under Hydra's launcher plugins: ``python -m pytest tests/cli/test_launchers.py``.

The CLI and the launchers' process boundaries are the subject, so these run ``python -m
src.train -m`` in subprocesses. Slow: each sweep trains six tiny runs. The data cache's race
(jobs loading fresh data at once) is in ``tests/tracking/test_server.py``, whose two sweeps
start three such jobs together.
"""

from __future__ import annotations

import pytest

from src.core import schema
from tests.conftest import FAST, job_runs, run_cli, run_train

pytestmark = pytest.mark.slow

# Two seeds x (baseline, two methods), seed slowest: the first two jobs, seed 0's baseline job
# and its dynamic job, start together and race to train the one baseline they share.
SWEEP = [
    "-m",
    "seed=0,1",
    "+method=baseline,dynamic,static",
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=50",
    "task.evaluation.alpha=0.2",  # the tiny fleet holds 5 normal cars out: 0.05 has no threshold
    *FAST,
]
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local"],
}


def _sweep(tmp, tiny_root, *extra: str) -> dict:
    """Run the sweep; ``{(method, seed): run}`` of its jobs' runs, after checking the wiring."""
    proc = run_train(*SWEEP, f"data.root={tiny_root}", *extra, tmp=tmp)
    client, runs = job_runs(tmp)
    assert {r.info.status for r in runs} == {"FINISHED"}, proc.stdout[-3000:]
    parents = {r.data.tags.get(schema.PARENT_RUN_ID) for r in runs}
    assert len(parents) == 1 and None not in parents  # every job under the one parent
    parent = client.get_run(parents.pop())
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[schema.SWEEP_JOBS_FINISHED] == "6"
    assert {r.data.tags[schema.SWEEP_ID] for r in runs} == {parent.data.tags[schema.SWEEP_ID]}
    return {(r.data.tags["method"], r.data.tags["seed"]): r for r in runs}


def _task_metrics(run) -> dict:
    """Task metrics, NaN (no p-value where no pair moved) made comparable to itself."""
    metrics = run.data.metrics.items()
    return {k: "nan" if v != v else v for k, v in metrics if k.startswith(("test/", "delta/"))}


@pytest.fixture(scope="module")
def sequential(tiny_root, tmp_path_factory) -> dict:
    """The same sweep with Hydra's basic launcher: one job after another, in one process."""
    return _sweep(tmp_path_factory.mktemp("sequential"), tiny_root)


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_parallel_sweep_trains_each_baseline_once_and_matches_sequential(
    launcher, sequential, tiny_root, tmp_path
):
    runs = _sweep(tmp_path, tiny_root, *LAUNCHERS[launcher])
    assert sorted(runs) == sorted(sequential)
    baselines = {k: r for k, r in runs.items() if k[0] == schema.BASELINE}
    assert sorted(baselines) == [("baseline", "0"), ("baseline", "1")]  # one trainer per seed
    for (method, seed), run in runs.items():
        if method != schema.BASELINE:  # each variant against its own seed's one baseline
            assert run.data.tags[schema.BASELINE_RUN_ID] == baselines["baseline", seed].info.run_id
        assert _task_metrics(run) == _task_metrics(sequential[method, seed]), (method, seed)
    logs = "".join(p.read_text() for p in (tmp_path / "multirun").rglob("*.log"))  # Hydra's
    assert logs.count("cached ") == 1  # the data, fresh in this test, was cached once
    _timed_in_fresh_processes(tmp_path)


def _timed_in_fresh_processes(tmp) -> None:
    """``python -m src.timing`` on the launcher's sweep: every job's run gets the pass's speed."""
    proc = run_cli(
        "src.timing", "sweep_id=multirun", "processes=2", "rounds=1", "iters=2", "warmup=1",
        tmp=tmp,
    )  # fmt: skip
    assert "speed: 2 fresh processes x 1 rounds, 2 threads" in proc.stdout, proc.stdout
    _, runs = job_runs(tmp)
    variants = [r for r in runs if r.data.tags[schema.METHOD] != schema.BASELINE]
    passes = {r.data.tags.get(schema.TIMING_RUN_ID) for r in variants}
    assert len(passes) == 1 and None not in passes  # one pass timed all four variants
    for run in variants:  # (a baseline a variant's job trained is timed as its reference)
        speedup = run.data.metrics["timing/eager/speedup_bs1"]
        assert run.data.metrics["timing/eager/speedup_bs1_ci_low"] <= speedup
