"""The leaderboard's peak memory and start-up against the size of the store it reads, side by
side with an earlier commit's code (``--baseline``; by default 6a1d96c, the board that imported
torch and Lightning).

python -m benchmarks.board_memory                       # 100 and 1000 runs cloned from a tiny sweep
python -m benchmarks.board_memory --runs 100,500,1000,2000 --repeats 5
python -m benchmarks.board_memory --source sqlite:///mlruns/mlflow.db   # clone your own runs
python -m benchmarks.board_memory --baseline none       # this checkout's code only

1) a source store: a tiny sweep (baseline, dynamic, static, prune on ``dyad_tiny``, one epoch) run
here, or ``--source``; 2) for each size N, a fresh store of N runs: replicas of the source's
finished runs, each replica a new seed whose method runs point at its own baseline (every tag,
param, latest metric and the paired per-unit table copied, so a run has the shape a real one
has); 3) ``python -m src.leaderboard`` on that store in a child process, by this checkout's code
and by the baseline's (``git archive`` into a temporary folder, the same interpreter), interleaved
ABBA ``--repeats`` times. Per run: the peak resident memory (``ru_maxrss`` from ``wait4``, read
by a small probe process: see :data:`_PROBE`), the seconds to the first byte of output
(unbuffered) and to the end; and, apart, ``--help``'s seconds
to its first output: the start-up alone (imports, config). A ratio baseline / this checkout is
the geometric mean of the paired repeats with a 95 % t interval; both codes' boards must hold
the same rows (the CSV, provenance lines aside). The slope between sizes (MB per run) is what
must stay flat; the intercept is the interpreter and what it imports.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from scipy import stats

from benchmarks.common import ensure_data, print_table, write_csv
from src.core import schema
from src.core.paths import ROOT

BASELINE = "6a1d96c"  # issue 23's starting point: the board imported torch and Lightning
TARGET_MB, TARGET_RATIO = 250, 3.0  # at 1,000 runs: peak RSS; first output, times faster
NEW = "this checkout"
# A child's peak RSS (``ru_maxrss``) starts at its parent's: Linux carries the high-water mark over
# fork and exec, and this process holds torch and MLflow (about 600 MB). So each command runs under
# a small interpreter of its own (stdlib only), which times its output and reports its peak.
_PROBE = """
import json, os, subprocess, sys, tempfile, time
env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
env["PYTHONUNBUFFERED"] = "1"  # a pipe is block-buffered: the first byte would come at exit
with tempfile.TemporaryFile() as err:
    started = time.perf_counter()
    proc = subprocess.Popen(sys.argv[2:], cwd=sys.argv[1], env=env, stdout=subprocess.PIPE,
                            stderr=err)
    proc.stdout.read(1)
    first = time.perf_counter() - started
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    print(json.dumps({"peak_mb": usage.ru_maxrss / 1024, "first_s": first, "wall_s": wall,
                      "rc": proc.returncode, "stderr": err.read().decode()[-2000:]}))
"""
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
        target.log_artifact(new, _paired_table(source, run.info.run_id), schema.TABLES_DIR)
    target.set_terminated(new, "FINISHED")
    return new


@functools.cache
def _paired_table(source: MlflowClient, run_id: str) -> str:
    """The source run's paired per-unit table, downloaded once."""
    paired = schema.table_artifact(schema.PAIRED_TABLE)
    return source.download_artifacts(run_id, paired, tempfile.mkdtemp())


@dataclass(frozen=True)
class Sample:
    """One child process: peak resident MB, seconds to its first byte of output and to its end."""

    peak_mb: float
    first_s: float
    wall_s: float


def measure(cmd: list[str], cwd: Path) -> Sample:
    """Run ``cmd`` in ``cwd`` (its ``src`` is the code measured) through :data:`_PROBE`."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(cwd), *cmd], capture_output=True, text=True, check=True
    )
    found = json.loads(probe.stdout)
    if found["rc"] != 0:
        raise SystemExit(f"{cmd} failed in {cwd}: {found['stderr']}")
    return Sample(found["peak_mb"], found["first_s"], found["wall_s"])


@contextmanager
def code_trees(baseline: str) -> Iterator[dict[str, Path]]:
    """``{label: folder}``: the baseline commit's code (``git archive``: the repository is left
    as it is) and this checkout's."""
    if baseline == "none":
        yield {NEW: ROOT}
        return
    with tempfile.TemporaryDirectory(prefix="board-baseline-") as tmp:
        git = ["git", "archive", baseline]
        archive = subprocess.run(git, cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield {baseline: Path(tmp), NEW: ROOT}


def compare(uri: str, out: Path, trees: dict[str, Path], repeats: int) -> dict:
    """``{(label, "board" | "help"): [Sample per repeat]}``, the codes interleaved ABBA so that
    a drift in the machine's load falls on both alike."""
    samples = defaultdict(list)
    for repeat in range(repeats):
        for label in list(trees)[:: 1 if repeat % 2 == 0 else -1]:
            board = [f"tracking_uri={uri}", f"out_dir={out / label.replace(' ', '_')}"]
            for kind, args in (("board", board), ("help", ["--help"])):
                cmd = [sys.executable, "-m", "src.leaderboard", *args]
                samples[label, kind].append(measure(cmd, trees[label]))
    return samples


def same_boards(out: Path, labels: list[str]) -> bool:
    """Whether every code wrote the same board rows (``#`` provenance lines aside)."""
    boards = [
        {f.name: [r for r in f.read_text().splitlines() if not r.startswith("#")] for f in files}
        for files in (sorted((out / label.replace(" ", "_")).glob("*.csv")) for label in labels)
    ]
    return bool(boards[0]) and all(board == boards[0] for board in boards)


def ratio(old: list[float], new: list[float]) -> str:
    """old / new: the geometric mean of the paired repeats, with a 95 % t interval."""
    logs = [math.log(a / b) for a, b in zip(old, new, strict=True)]
    mean, half = statistics.fmean(logs), math.nan
    if len(logs) > 1:
        half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return f"{math.exp(mean):.2f}x [{math.exp(mean - half):.2f}, {math.exp(mean + half):.2f}]"


def _median(samples: list[Sample], key: str) -> float:
    return statistics.median(getattr(s, key) for s in samples)


def _values(samples: list[Sample], key: str) -> list[float]:
    return [getattr(s, key) for s in samples]


def report(results: dict[int, dict], same: dict[int, bool], labels: list[str]) -> None:
    """Medians per size and code; ratios baseline / this checkout; the targets at the largest."""
    rows, previous = [], None
    for n, samples in results.items():
        for label in labels:
            board, mb = samples[label, "board"], _median(samples[label, "board"], "peak_mb")
            slope = "-"
            if previous and label == NEW:
                slope = f"{(mb - previous[1]) / (n - previous[0]):.3f}"
            first, wall = (f"{_median(board, k):.2f}" for k in ("first_s", "wall_s"))
            start = f"{_median(samples[label, 'help'], 'first_s'):.2f}"
            rows.append((str(n), label, f"{mb:.0f}", slope, first, wall, start))
        previous = (n, _median(samples[NEW, "board"], "peak_mb"))
    header = ("runs", "code", "peak RSS MB", "MB per added run", "first output s", "wall s")
    repeats = len(next(iter(results.values()))[NEW, "board"])
    title = f"Leaderboard by store size (median of {repeats} runs)"
    print_table(title, rows, (*header, "start-up s (--help)"))
    sizes = "-".join(str(n) for n in results)
    write_csv("board_memory", [f"runs{sizes}", f"r{repeats}"], rows, (*header, "start-up s"))
    if len(labels) > 1:
        report_ratios(results, same, labels[0])


def report_ratios(results: dict[int, dict], same: dict[int, bool], old: str) -> None:
    """Ratios baseline / this checkout per size, and the targets at the largest size."""
    rows = []
    for n, samples in results.items():
        cells = [
            ratio(_values(samples[old, kind], key), _values(samples[NEW, kind], key))
            for kind, key in (
                ("board", "peak_mb"),
                ("board", "first_s"),
                ("board", "wall_s"),
                ("help", "first_s"),
            )
        ]
        rows.append((str(n), *cells, "yes" if same[n] else "NO"))
    header = ("runs", "peak RSS", "first output", "wall", "start-up (--help)", "same board")
    print_table(f"{old} / {NEW} (geometric mean of paired runs, 95 % t interval)", rows, header)
    sizes = "-".join(str(n) for n in results)
    write_csv("board_memory", [f"runs{sizes}", f"ratios-vs-{old}"], rows, header)
    n, samples = max(results.items())
    mb = _median(samples[NEW, "board"], "peak_mb")
    first = ratio(
        _values(samples[old, "board"], "first_s"), _values(samples[NEW, "board"], "first_s")
    )
    print(
        f"at {n} runs: peak RSS {mb:.0f} MB (target <= {TARGET_MB} at 1000); first output "
        f"{first} faster than {old} (target >= {TARGET_RATIO:g}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="100,1000", help="store sizes, comma-separated")
    parser.add_argument("--source", default=None, help="store to clone (default: a tiny sweep)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each code per size")
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with; none: off")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    sizes = sorted(int(n) for n in args.runs.split(","))
    results, same = {}, {}
    with tempfile.TemporaryDirectory() as tmp, code_trees(args.baseline) as trees:
        tmp = Path(tmp)
        source = MlflowClient(args.source or tiny_sweep(tmp))
        for n in sizes:
            uri = f"sqlite:///{tmp}/store-{n}.db"
            clone(source, MlflowClient(uri), tmp / f"artifacts-{n}", n)
            results[n] = compare(uri, tmp / f"board-{n}", trees, args.repeats)
            same[n] = same_boards(tmp / f"board-{n}", list(trees))
    report(results, same, list(trees))


if __name__ == "__main__":
    main()
