"""The leaderboard's peak memory against the size of the store it reads.

python -m benchmarks.board_memory                       # 100 and 1000 runs cloned from a tiny sweep
python -m benchmarks.board_memory --runs 100,500,1000,2000
python -m benchmarks.board_memory --source sqlite:///mlruns/mlflow.db   # clone your own runs

1) a source store: a tiny sweep (baseline, dynamic, static, prune on ``dyad_tiny``, one epoch) run
here, or ``--source``; 2) for each size N, a fresh store of N runs: replicas of the source's
finished runs, each replica a new seed whose method runs point at its own baseline (every tag,
param, latest metric and the paired per-unit table copied, so a run has the shape a real one
has); 3) ``python -m src.leaderboard`` on that store in a child process, whose peak resident
memory (``ru_maxrss`` from ``wait4``) is the figure. The slope between sizes (MB per run) is what
must stay flat; the intercept is the interpreter, torch and pandas.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from benchmarks.common import ensure_data, print_table, write_csv
from src.core import schema
from src.core.paths import ROOT

_SWEEP = [
    "+method=baseline,dynamic,static,prune",
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=50",
    "benchmark.iters=2",
    "benchmark.rounds=1",
    "benchmark.warmup=1",
    "benchmark.batch_sizes=[1,8]",
    "benchmark.runtimes=[eager]",
    "trainer.enable_progress_bar=false",
]


def tiny_sweep(tmp: Path) -> str:
    """A store with one small sweep's runs, made by ``src.train`` itself."""
    uri = f"sqlite:///{tmp}/source.db"
    root = ensure_data("tiny", None, brand=3)
    args = ["-m", *_SWEEP, f"data.root={root}", f"paths.data_dir={tmp}/data"]
    args += [f"hydra.sweep.dir={tmp}/multirun"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-m", "src.train", *args], cwd=ROOT, env=env, check=True)
    return uri


def clone(source: MlflowClient, target: MlflowClient, tmp: Path, runs: int) -> None:
    """``runs`` runs in ``target``: replicas of the source's finished job runs, one seed each."""
    ids = [e.experiment_id for e in source.search_experiments()]
    jobs = [r for r in source.search_runs(ids) if r.info.status == "FINISHED"]
    jobs = sorted((r for r in jobs if schema.METHOD in r.data.tags), key=_baseline_first)
    experiments: dict[str, str] = {}
    made, replica = 0, 0
    while made < runs:
        new_ids: dict[str, str] = {}
        for run in jobs[: runs - made]:
            name = source.get_experiment(run.info.experiment_id).name
            if name not in experiments:
                experiments[name] = target.create_experiment(name, (tmp / name).as_uri())
            new_ids[run.info.run_id] = _copy(
                source, target, experiments[name], run, replica, new_ids
            )
        made, replica = made + len(new_ids), replica + 1


def _baseline_first(run) -> int:
    return 0 if run.data.tags[schema.METHOD] == schema.BASELINE else 1


def _copy(source, target, experiment_id: str, run, replica: int, new_ids: dict) -> str:
    """One run copied with seed ``1000 + replica`` and its baseline link remapped."""
    tags = {
        k: v for k, v in run.data.tags.items() if k not in (schema.PARENT_RUN_ID, schema.SWEEP_ID)
    }
    params = dict(run.data.params)
    tags[schema.SEED] = params["seed"] = str(1000 + replica)
    baseline = tags.get(schema.BASELINE_RUN_ID)
    if baseline:
        tags[schema.BASELINE_RUN_ID] = new_ids.get(baseline, baseline)
        params["method.baseline_run_id"] = tags[schema.BASELINE_RUN_ID]
    new = target.create_run(experiment_id, start_time=run.info.start_time + replica).info.run_id
    now = int(time.time() * 1000)
    target.log_batch(
        new,
        metrics=[Metric(k, v, now, 0) for k, v in run.data.metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    if run.data.tags[schema.METHOD] != schema.BASELINE:
        target.log_artifact(new, _paired_table(source, run.info.run_id), "tables")
    target.set_terminated(new, "FINISHED")
    return new


@functools.cache
def _paired_table(source: MlflowClient, run_id: str) -> str:
    """The source run's paired per-unit table, downloaded once."""
    paired = f"tables/{schema.PAIRED_TABLE}.csv"
    return source.download_artifacts(run_id, paired, tempfile.mkdtemp())


def peak_mb(uri: str, out: Path) -> tuple[float, float]:
    """Peak resident MB and wall seconds of ``python -m src.leaderboard`` on ``uri``."""
    cmd = [sys.executable, "-m", "src.leaderboard", f"tracking_uri={uri}", f"out_dir={out}"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"leaderboard failed on {uri}: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="100,1000", help="store sizes, comma-separated")
    parser.add_argument("--source", default=None, help="store to clone (default: a tiny sweep)")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    sizes = sorted(int(n) for n in args.runs.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = MlflowClient(args.source or tiny_sweep(tmp))
        rows, previous = [], None
        for n in sizes:
            uri = f"sqlite:///{tmp}/store-{n}.db"
            clone(source, MlflowClient(uri), tmp / f"artifacts-{n}", n)
            mb, seconds = peak_mb(uri, tmp / f"board-{n}")
            slope = f"{(mb - previous[1]) / (n - previous[0]):.3f}" if previous else "-"
            rows.append((str(n), f"{mb:.0f}", slope, f"{seconds:.1f}"))
            previous = (n, mb)
    print_table(
        "Leaderboard peak memory by store size",
        rows,
        ("runs", "peak RSS MB", "MB per added run", "wall s"),
    )
    header = ("runs", "peak RSS MB", "MB per added run", "wall s")
    write_csv("board_memory", [f"runs{args.runs}", "own" if args.source else "tiny"], rows, header)


if __name__ == "__main__":
    main()
