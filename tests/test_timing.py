"""``python -m src.timing`` end to end: ``pytest tests/test_timing.py -m slow``."""

from __future__ import annotations

import pytest

from tests.conftest import job_runs, run_cli, run_train

SWEEP = [
    "-m",
    "+method=baseline,dynamic",
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=20",
    "benchmark.iters=2",
    "benchmark.rounds=1",
    "benchmark.batch_sizes=[1,8]",
    "benchmark.runtimes=[eager,onnxruntime]",
]


@pytest.mark.slow
def test_a_sweep_is_timed_in_fresh_processes_and_its_runs_say_how(tiny_root, tmp_path):
    run_train(*SWEEP, f"data.root={tiny_root}", tmp=tmp_path)
    proc = run_cli(
        "src.timing", "sweep_id=multirun", "processes=2", "rounds=2", "iters=3", "warmup=1",
        tmp=tmp_path,
    )  # fmt: skip
    assert "speed: 2 fresh processes x 2 rounds, 2 threads" in proc.stdout, proc.stdout
    client, runs = job_runs(tmp_path)
    by_method = {r.data.tags["method"]: r for r in runs}
    variant, baseline = by_method["dynamic"], by_method["baseline"]
    pass_id = variant.data.tags["timing.run_id"]
    assert baseline.data.tags["timing.run_id"] == pass_id
    metrics = variant.data.metrics
    for name in ("timing/eager/speedup_bs1", "timing/onnxruntime/speedup_bsN",
                 "timing/onnxruntime/vs_fp32_bs1"):  # fmt: skip
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"], name
    assert "timing/onnxruntime/speedup_bs1" in baseline.data.metrics  # fp32 in ORT vs eager
    timing = client.get_run(pass_id)
    assert timing.data.tags["analysis"] == "timing" and timing.info.status == "FINISHED"
    assert timing.data.tags["mlflow.parentRunId"] == variant.data.tags["mlflow.parentRunId"]
    files = {a.path for a in client.list_artifacts(pass_id, "tables")}
    assert files == {
        f"tables/{n}.csv" for n in ("timing_blocks", "timing_speedups", "timing_processes")
    }
    # the board still ranks the two training runs only
    board = run_cli("src.leaderboard", "sweep_id=multirun", f"out_dir={tmp_path}/lb", tmp=tmp_path)
    assert "runs: 2 used" in board.stdout

    # runs trained before the pass existed logged no inputs: one line says what to do
    for path in (tmp_path / "artifacts").rglob("inputs.pt"):
        path.unlink()
    old = run_cli("src.timing", "sweep_id=multirun", "processes=2", tmp=tmp_path, check=False)
    assert old.returncode == 2 and old.stderr.startswith("error: run "), old.stderr[-2000:]
    assert len(old.stderr.strip().splitlines()) == 1 and "train them again" in old.stderr
