"""Faults injected into real ``python -m src.train`` processes: ``pytest tests/test_faults.py``.

The CLI is the subject (signals, exit codes), so these run subprocesses. Slow: each trains.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.core import schema
from tests.conftest import FAST, ROOT, job_runs
from tests.servers import FAST_FAILING_CLIENT, mlflow_server

pytestmark = pytest.mark.slow

# Each phase long enough to be caught in: many epochs, many bootstrap resamples, many timings.
PHASES = {
    "training": ["trainer.max_epochs=400", "task.evaluation.n_boot=50"],
    # The AUROC bootstrap is vectorised: 400,000 resamples of 7 vehicles took 0.3-0.6 s, under the
    # 0.5 s a test waits inside a phase; 2,000,000 take about 3 s (1.6 GB at peak).
    "evaluating": ["trainer.max_epochs=1", "task.evaluation.n_boot=2000000"],
    "measuring": [
        "trainer.max_epochs=1",
        "task.evaluation.n_boot=50",
        "benchmark.iters=4000",
        "benchmark.batch_sizes=[1,8]",
    ],
}


def _start(
    tmp,
    tiny_root,
    *overrides: str,
    uri: str = "",
    env=None,
    pinned: bool = True,
    entry: str = "src.train",
) -> subprocess.Popen:
    """``python -m src.train`` (or ``entry``) on the tiny data; ``pinned=False``: Hydra's own
    dated output folder for each invocation, as a user's command gets it."""
    args = [
        *(o for o in overrides if o.startswith("-")),  # argparse wants flags first
        *([f"hydra.run.dir={tmp}/out"] if pinned else []),
        f"paths.data_dir={tmp}/data",
        f"logger.tracking_uri={uri or f'sqlite:///{tmp}/mlflow.db'}",
        "trainer.enable_progress_bar=false",
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        *FAST,
        *(o for o in overrides if not o.startswith("-")),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", entry, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_checkpoint(tmp, timeout: float = 300):
    """The first checkpoint of the job in ``tmp``, as soon as it is written."""
    checkpoint = tmp / "out" / "ckpt" / "last.ckpt"
    deadline = time.monotonic() + timeout
    while not checkpoint.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    return checkpoint


def _wait_for_history(tmp, key: str, timeout: float = 300) -> list[int]:
    """The steps of metric ``key`` of the one job run in ``tmp``, once it has any."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client, runs = job_runs(tmp)
        steps = (
            [m.step for m in client.get_metric_history(runs[0].info.run_id, key)] if runs else []
        )
        if steps:
            return steps
        time.sleep(0.2)
    raise AssertionError(f"{key} was never logged")


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 300) -> list[str]:
    """Read the job's log until a line contains ``marker``; the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"never saw {marker!r}:\n{''.join(lines[-40:])}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_stopped_run_is_killed_with_its_phase_and_nonzero_exit(phase, signum, tiny_root, tmp_path):
    proc = _start(tmp_path, tiny_root, *PHASES[phase])
    _wait_for(proc, f"{phase} ")
    time.sleep(0.5)  # inside the phase, not at its first line
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out[-3000:]
    assert "KILLED" in out.splitlines()[-1]  # one line says what happened
    _, runs = job_runs(tmp_path)
    assert [r.info.status for r in runs] == ["KILLED"]  # never RUNNING, never FINISHED
    tags = runs[0].data.tags
    assert tags[schema.STOP_SIGNAL] == signal.Signals(signum).name
    assert tags[schema.STOP_PHASE].startswith(phase), tags[schema.STOP_PHASE]


def test_a_sigkilled_run_is_marked_failed_by_the_next_run(tiny_root, tmp_path):
    proc = _start(tmp_path, tiny_root, *PHASES["training"])
    _wait_for(proc, "training ")
    proc.kill()  # SIGKILL: the process cannot mark its own run
    proc.wait()
    _, runs = job_runs(tmp_path)
    assert [r.info.status for r in runs] == ["RUNNING"]  # what MLflow alone would keep forever
    again = _start(tmp_path, tiny_root, "trainer.max_epochs=1", "task.evaluation.n_boot=50")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    _, runs = job_runs(tmp_path)
    status = {r.info.run_id: r.info.status for r in runs}
    assert sorted(status.values()) == ["FAILED", "FINISHED"]
    killed = next(r for r in runs if r.info.status == "FAILED")
    assert "orphaned: its process" in killed.data.tags[schema.ERROR]


def test_two_sweeps_started_together_on_a_fresh_store_lose_nothing(tiny_root, tmp_path):
    common = ["trainer.max_epochs=1", "task.evaluation.n_boot=50"]
    sweeps = [
        _start(
            tmp_path, tiny_root, "-m", f"seed={seeds}", f"hydra.sweep.dir={tmp_path}/m{i}", *common
        )
        for i, seeds in enumerate(("0,1", "2,3"))
    ]
    for proc in sweeps:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
    client, runs = job_runs(tmp_path)
    assert sorted(int(r.data.tags["seed"]) for r in runs) == [0, 1, 2, 3]
    assert {r.info.status for r in runs} == {"FINISHED"}
    parents = {r.data.tags.get(schema.PARENT_RUN_ID) for r in runs}
    assert len(parents) == 2 and None not in parents  # both parents, every job under one
    assert {client.get_run(p).info.status for p in parents} == {"FINISHED"}


def _test_metrics(tmp) -> dict:
    _, runs = job_runs(tmp)
    assert [r.info.status for r in runs] == ["FINISHED"], [r.info.status for r in runs]
    return runs[0], {k: v for k, v in runs[0].data.metrics.items() if k.startswith("test/")}


def test_a_sigkilled_training_resumes_in_its_run_and_ends_as_if_never_stopped(tiny_root, tmp_path):
    args = ["trainer.max_epochs=12", "task.evaluation.n_boot=50"]
    whole = _start(tmp_path / "whole", tiny_root, *args)
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out[-3000:]
    _, expected = _test_metrics(tmp_path / "whole")

    killed = _start(tmp_path / "killed", tiny_root, *args)
    checkpoint = _wait_for_checkpoint(tmp_path / "killed")
    killed.kill()  # SIGKILL right after the first checkpoint: mid-training
    killed.wait()
    epoch = torch.load(checkpoint, weights_only=True)["epoch"]
    assert epoch < 11  # it was stopped before the end
    again = _start(tmp_path / "killed", tiny_root, *args)  # the same command, rerun
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    run, got = _test_metrics(tmp_path / "killed")  # one run: the killed one, resumed, finished
    assert run.data.tags[schema.RESUMED] == "1"
    # the same batches, RNG states, weights and schedule at the resumed epoch (checked); the
    # first resumed forward still differs at float rounding (6e-6 relative loss), not beyond
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert got["test/auroc"] == expected["test/auroc"]


def _wait_for_run_checkpoint(tmp, timeout: float = 300) -> Path:
    """The first checkpoint of the one job in ``tmp``'s store, wherever the run keeps it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, runs = job_runs(tmp)
        folder = runs[0].data.tags.get(schema.CHECKPOINTS) if runs else None
        if folder and (Path(folder) / "last.ckpt").is_file():
            return Path(folder) / "last.ckpt"
        time.sleep(0.05)
    raise AssertionError("no checkpoint was written")


def test_the_same_command_typed_again_resumes_a_sigkilled_training(tiny_root, tmp_path):
    """No pinned output folder: each invocation writes to its own dated folder (not run
    identity), and the rerun resumes the killed run and records both folders."""
    args = ["trainer.max_epochs=30", "task.evaluation.n_boot=50"]
    killed = _start(tmp_path, tiny_root, *args, pinned=False)
    checkpoint = _wait_for_run_checkpoint(tmp_path)
    killed.kill()
    killed.wait()
    again = _start(tmp_path, tiny_root, *args, pinned=False)
    out, _ = again.communicate(timeout=600)
    _, runs = job_runs(tmp_path)
    folders = runs[0].data.tags.get(schema.OUTPUT_DIRS, "").split(",")
    try:
        assert again.returncode == 0, out[-3000:]
        assert [r.info.status for r in runs] == ["FINISHED"]
        assert runs[0].data.tags[schema.RESUMED] == "1" and "resuming run" in out
        assert len(folders) == 2 and folders[0] != folders[1], folders
        assert str(checkpoint).startswith(folders[0])  # the checkpoint stays where it was
        assert "paths.output_dir" not in runs[0].data.params
    finally:
        for folder in folders:  # Hydra's dated folders under the repo's outputs/runs
            if folder and Path(folder).parent.name == "runs":
                shutil.rmtree(folder, ignore_errors=True)


def test_a_resume_that_cannot_proceed_says_so_and_trains_afresh(tiny_root, tmp_path):
    args = ["trainer.max_epochs=30", "task.evaluation.n_boot=50"]
    killed = _start(tmp_path / "a", tiny_root, *args)
    _wait_for_checkpoint(tmp_path / "a")
    killed.kill()
    killed.wait()
    _, (run,) = job_runs(tmp_path / "a")
    # a setting outside the baseline's identity, changed: the run's record clashes with it
    again = _start(tmp_path / "a", tiny_root, *args, "benchmark.block_seconds=0.4")
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    refused = [line for line in out.splitlines() if "cannot be resumed by this command" in line]
    assert len(refused) == 1 and "training afresh as a new run" in refused[0], out[-3000:]
    _, runs = job_runs(tmp_path / "a")
    status = {r.info.run_id: r.info.status for r in runs}
    assert status[run.info.run_id] == "FAILED" and sorted(status.values()) == ["FAILED", "FINISHED"]
    third = _start(tmp_path / "a", tiny_root, *args, "benchmark.block_seconds=0.4")
    out, _ = third.communicate(timeout=600)
    assert "cannot be resumed" not in out  # said once: never tried again


def test_a_server_that_dies_mid_training_leaves_the_run_to_resume(tiny_root, tmp_path):
    args = ["trainer.max_epochs=12", "task.evaluation.n_boot=50"]
    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "artifacts") as server:
        proc = _start(tmp_path, tiny_root, *args, uri=server.uri, env=FAST_FAILING_CLIENT)
        _wait_for_checkpoint(tmp_path)
        before = _wait_for_history(tmp_path, "train/loss_epoch")
        server.kill()  # the tracking server crashes while the job trains
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 2, out[-3000:]
        last = out.strip().splitlines()[-1]
        assert last.startswith(
            f"error: the MLflow store {server.uri} stopped answering during training"
        ), last
        client, runs = job_runs(tmp_path)
        assert [r.info.status for r in runs] == ["RUNNING"]  # it could not be marked
        run_id = runs[0].info.run_id
        kept = [m.step for m in client.get_metric_history(run_id, "train/loss_epoch")]
        assert kept == before  # what was logged before the crash is kept
        server.start()  # back, on the same port and store
        again = _start(tmp_path, tiny_root, *args, uri=server.uri, env=FAST_FAILING_CLIENT)
        out, _ = again.communicate(timeout=600)
        assert again.returncode == 0, out[-3000:]
        client, runs = job_runs(tmp_path)
    assert [(r.info.run_id, r.info.status) for r in runs] == [(run_id, "FINISHED")]
    assert runs[0].data.tags[schema.RESUMED] == "1"
    steps = [m.step for m in client.get_metric_history(run_id, "train/loss_epoch")]
    assert steps[: len(before)] == before and len(steps) > len(before)


def test_an_interrupted_sweep_reruns_only_what_is_missing(tiny_root, tmp_path):
    """The sweep as a user types it (Hydra's own dated folders), SIGKILLed in its fourth job,
    then the same command again: the three jobs that FINISHED are reused (one line each) and
    join the new sweep; only the fourth and fifth do work."""
    methods = "+method=baseline,dynamic,static,qat,prune_structured"
    args = ["-m", methods, "trainer.max_epochs=3", "task.evaluation.n_boot=50"]
    before = set((ROOT / "outputs" / "multiruns").glob("*"))
    try:
        started = time.monotonic()
        first = _start(tmp_path, tiny_root, *args, pinned=False)
        _wait_for(first, "compressing with qat")
        first.kill()  # SIGKILL in the fourth job
        first.wait()
        killed_after = time.monotonic() - started
        started = time.monotonic()
        again = _start(tmp_path, tiny_root, *args, pinned=False)
        out, _ = again.communicate(timeout=900)
        rerun = time.monotonic() - started
        assert again.returncode == 0, out[-3000:]
        reused = [line for line in out.splitlines() if "already done by run" in line]
        assert sorted(line.split(" - ")[-1].split(":")[0] for line in reused) == [
            "baseline", "dynamic", "static"]  # fmt: skip
        assert "compressing with qat" in out and "compressing with prune_structured" in out
        assert "compressing with dynamic" not in out and "training dyad" not in out
        whole = tmp_path / "whole"  # the same sweep uninterrupted, on a store of its own
        whole.mkdir()
        started = time.monotonic()
        uninterrupted = _start(whole, tiny_root, *args, pinned=False)
        uninterrupted.communicate(timeout=900)  # read its output: a full pipe would block it
        assert uninterrupted.returncode == 0
        print(
            f"killed after {killed_after:.0f} s in job 4 of 5; the rerun took {rerun:.0f} s, "
            f"the sweep uninterrupted {time.monotonic() - started:.0f} s"
        )
        client, runs = job_runs(tmp_path)
        finished = [r for r in runs if r.info.status == "FINISHED"]
        assert len(finished) == 5 and all(r.info.status != "RUNNING" for r in runs)
        ids = [e.experiment_id for e in client.search_experiments()]
        parents = client.search_runs(ids, order_by=["attributes.start_time DESC"])
        newest = next(
            r
            for r in parents
            if schema.SWEEP_ID in r.data.tags and schema.METHOD not in r.data.tags
        )
        board = subprocess.run(
            [sys.executable, "-m", "src.leaderboard", f"parent_run_id={newest.info.run_id}",
             f"out_dir={tmp_path}/board", f"tracking_uri=sqlite:///{tmp_path}/mlflow.db"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert board.returncode == 0, board.stderr[-2000:]
        assert "runs: 5 used" in board.stdout  # the reused runs joined the new sweep's board
    finally:
        for folder in set((ROOT / "outputs" / "multiruns").glob("*")) - before:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_for_fine_tune_checkpoint(tmp, method: str, timeout: float = 300) -> Path:
    """The first fine-tuning checkpoint of the ``method`` run in ``tmp``'s store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, runs = job_runs(tmp)
        for run in runs:
            folder = run.data.tags.get(schema.CHECKPOINTS)
            if run.data.tags.get(schema.METHOD) == method and folder:
                found = sorted(Path(folder).glob("fit*/last.ckpt"))
                if found:
                    return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{method} wrote no fine-tuning checkpoint")


@pytest.mark.parametrize("method", ["qat", "distill"])
def test_a_sigkilled_fine_tuning_resumes_in_its_run(method, tiny_root, tmp_path):
    """SIGKILL during the method's fine-tuning; the same command again resumes that run from
    its last epoch (at most one lost) and ends FINISHED, the baseline reused, not retrained."""
    args = [
        f"+method={method}",
        "method.epochs=40",
        "trainer.max_epochs=1",
        "task.evaluation.n_boot=50",
    ]
    killed = _start(tmp_path, tiny_root, *args, pinned=False)
    checkpoint = _wait_for_fine_tune_checkpoint(tmp_path, method)
    killed.kill()
    killed.wait()
    stopped_at = torch.load(checkpoint, weights_only=True)["epoch"]
    again = _start(tmp_path, tiny_root, *args, pinned=False)
    out, _ = again.communicate(timeout=900)
    _, runs = job_runs(tmp_path)
    folders = {f for r in runs for f in r.data.tags.get(schema.OUTPUT_DIRS, "").split(",") if f}
    try:
        assert again.returncode == 0, out[-3000:]
        (run,) = [r for r in runs if r.data.tags[schema.METHOD] == method]
        assert run.info.status == "FINISHED" and run.data.tags[schema.RESUMED] == "1"
        assert "resuming run" in out and "training dyad" not in out  # the baseline: reused
        finished = torch.load(checkpoint, weights_only=True)["epoch"]
        assert (
            stopped_at < 39 and finished == 39
        )  # epochs 0-39: resumed after stopped_at, to the end
    finally:
        for folder in folders:
            if Path(folder).parent.name == "runs":
                shutil.rmtree(folder, ignore_errors=True)


def _wait_for_sensitivity_rows(tmp, at_least: int, timeout: float = 300) -> int:
    """How many rows the sensitivity run in ``tmp``'s store has logged, once ``at_least``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client, runs = job_runs(tmp)
        for run in (r for r in runs if r.data.tags.get(schema.METHOD) == "sensitivity"):
            try:
                path = client.download_artifacts(
                    run.info.run_id, f"{schema.CHECKPOINT_DIR}/sensitivity-rows.csv", str(tmp)
                )
            except Exception:  # not logged yet
                continue
            n = sum(1 for _ in open(path)) - 1
            if n >= at_least:
                return n
        time.sleep(0.2)
    raise AssertionError(f"the sensitivity run logged fewer than {at_least} rows")


def test_a_sigkilled_sensitivity_analysis_resumes_in_its_run(tiny_root, tmp_path):
    """SIGKILL while layers are being treated; the same command again treats only the rest,
    in the same run, and ends FINISHED; typed once more, it is reused."""
    args = ["trainer.max_epochs=1", "sensitivity.subsample=null", "sensitivity.latency=false"]
    killed = _start(tmp_path, tiny_root, *args, pinned=False, entry="src.sensitivity")
    _wait_for_sensitivity_rows(tmp_path, 3)
    killed.kill()
    killed.wait()
    logged = _wait_for_sensitivity_rows(tmp_path, 3)  # what the kill left
    again = _start(tmp_path, tiny_root, *args, pinned=False, entry="src.sensitivity")
    out, _ = again.communicate(timeout=900)
    client, runs = job_runs(tmp_path)
    try:
        assert again.returncode == 0, out[-3000:]
        (run,) = [r for r in runs if r.data.tags[schema.METHOD] == "sensitivity"]
        assert run.info.status == "FINISHED" and run.data.tags[schema.RESUMED] == "1"
        assert "resuming sensitivity run" in out and "training dyad" not in out  # baseline reused
        table = client.download_artifacts(run.info.run_id, "tables/sensitivity.csv", str(tmp_path))
        total = sum(1 for _ in open(table)) - 1
        assert f"{logged} of {total} treated models taken from the stopped run" in out
        third = _start(tmp_path, tiny_root, *args, pinned=False, entry="src.sensitivity")
        out, _ = third.communicate(timeout=300)
        assert third.returncode == 0, out[-2000:]
        assert "already done by run " + run.info.run_id in out
    finally:
        _, runs = job_runs(tmp_path)  # every attempt's Hydra folder, under outputs/runs
        tagged = (r.data.tags.get(schema.OUTPUT_DIRS, "") for r in runs)
        for folder in {f for folders in tagged for f in folders.split(",") if f}:
            if Path(folder).parent.name == "runs":
                shutil.rmtree(folder, ignore_errors=True)
