"""A timing pass: the variants of a selection timed from their logged files in fresh processes.

In-run latency times a variant beside its baseline inside one process, so everything that process
drew once (layout, allocator, kernel choice, thread placement, a co-tenant) is in both of its
numbers and in none of its interval. Here ``P`` fresh interpreters (``spawn``, one after another,
never side by side) each load every model of the selection from its run's files, and time them
all in ``R`` rounds in a new random order (:func:`src.measure.rounds.time_rounds`); the process
is the unit the interval resamples (:mod:`src.stats.speed`).

Files per run: the model (``model/model.pt``), each runtime's shipped file where the runtime
reopens one (``model/model.onnx``; a runtime without one is deployed anew in each process), and
the inputs the run was timed on (``timing/inputs.pt``, its baseline's where it has none).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from src.core import schema
from src.core.errors import ConfigError, UserError
from src.measure.environment import process_facts
from src.measure.latency import LatencySpec
from src.measure.report import CastInputs
from src.measure.rounds import time_rounds
from src.pipeline.artifact import load_model_file
from src.runtimes.base import RUNTIMES, DeployContext, RuntimeUnavailable, deploy
from src.tracking.store import RunStore


@dataclass(frozen=True)
class TimingSpec:
    """How a pass times.

    Attributes:
        latency: What each process does: batch sizes, warm-up, calls per block, rounds, threads
            (fixed, reported), block cap.
        processes: Fresh processes, one after another (the interval's sample size).
        seed: Seeds each process's round orders (process ``p`` draws from ``seed + p``).
        level: Two-sided coverage of the speedup intervals.
    """

    latency: LatencySpec
    processes: int = 5
    seed: int = 0
    level: float = 0.95

    @property
    def key(self) -> str:
        """These settings, hashed: a pass with the same key measured the same way."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __post_init__(self) -> None:
        if not isinstance(self.processes, int) or self.processes < 2:
            raise ConfigError(
                f"timing processes={self.processes!r}: need an int >= 2 (an interval over "
                "processes needs two); e.g. processes=5"
            )
        if not 0 < float(self.level) < 1:
            raise ConfigError(f"timing level={self.level!r} must lie in (0, 1), e.g. 0.95")


@dataclass(frozen=True)
class Target:
    """A finished run to time, and the runtimes it was deployed to (eager first)."""

    run_id: str
    baseline_run_id: str  # its own id for a baseline
    runtimes: tuple[str, ...] = (schema.EAGER,)


@dataclass(frozen=True)
class ModelFiles:
    """One (run, runtime) as a worker opens it: local files only."""

    key: str
    run_id: str
    runtime: str
    model_file: str
    inputs_file: str
    runtime_file: str | None = None


@dataclass(frozen=True)
class WorkerJob:
    """What one fresh process times."""

    process: int
    seed: int
    latency: LatencySpec
    models: tuple[ModelFiles, ...]


def model_key(run_id: str, runtime: str) -> str:
    return f"{run_id}@{runtime}"


def fetch_files(targets: list[Target], store: RunStore, folder: Path) -> list[ModelFiles]:
    """Download every target's files into ``folder`` (once per run).

    Raises:
        UserError: A run with no timing inputs, itself or through its baseline.
    """
    out = []
    for target in targets:
        where = folder / target.run_id
        where.mkdir(parents=True, exist_ok=True)
        model_file = store.download(target.run_id, schema.MODEL_ARTIFACT, where)
        inputs = _inputs_file(target, store, where)
        for runtime in target.runtimes:
            out.append(
                ModelFiles(
                    model_key(target.run_id, runtime),
                    target.run_id,
                    runtime,
                    model_file,
                    inputs,
                    _runtime_file(target.run_id, runtime, store, where),
                )
            )
    return out


def _inputs_file(target: Target, store: RunStore, where: Path) -> str:
    for run_id in dict.fromkeys((target.run_id, target.baseline_run_id)):
        if store.has_artifact(run_id, schema.TIMING_INPUTS):
            return store.download(run_id, schema.TIMING_INPUTS, where / "inputs" / run_id)
    raise UserError(
        f"run {target.run_id} (and its baseline {target.baseline_run_id}) logged no "
        f"{schema.TIMING_INPUTS}: runs trained before the timing pass existed cannot be timed "
        "from their files; train them again (python -m src.train ...)"
    )


def _runtime_file(run_id: str, runtime: str, store: RunStore, where: Path) -> str | None:
    """The runtime's shipped file of the run, where the runtime reopens one and it was logged."""
    if runtime == schema.EAGER or runtime not in RUNTIMES:
        return None
    found = RUNTIMES.get(runtime)
    if not found.reuses_baseline_artifact or not store.has_artifact(run_id, found.artifact):
        return None
    return store.download(run_id, found.artifact, where / runtime)


def run_processes(job: WorkerJob, processes: int, seed: int) -> list[dict]:
    """``processes`` fresh interpreters, one after another, each running :func:`time_in_process`
    on ``job`` with its own process index and seed."""
    context = multiprocessing.get_context("spawn")
    results = []
    for p in range(processes):
        one = WorkerJob(p, seed + p, job.latency, job.models)
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results.append(pool.submit(time_in_process, one).result())
    return results


def time_in_process(job: WorkerJob) -> dict:
    """A worker's whole life: open every model, time them, say where it ran.

    Returns:
        ``blocks`` (list of :class:`src.measure.rounds.Block` dicts with ``process``),
        ``facts`` (pid, affinity, load, CPU MHz, threads; before and after), ``skipped``
        (model key -> why it could not be opened).
    """
    # Rebuilding a quantized state dict warns of torch's own deprecations, once per process.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch._utils")
    before = process_facts()
    inputs = {m.inputs_file: torch.load(m.inputs_file, weights_only=True)["x"] for m in job.models}
    source = {m.key: m.inputs_file for m in job.models}
    cache: dict[tuple[str, int], torch.Tensor] = {}

    def make_input(key: str, batch: int) -> torch.Tensor:
        slot = (source[key], batch)  # one object per data set and batch size
        if slot not in cache:
            cache[slot] = inputs[slot[0]][:batch].contiguous()
        return cache[slot]

    with tempfile.TemporaryDirectory() as tmp:  # files a runtime deploys live as long as we do
        modules, skipped = open_models(job.models, job.latency.threads, Path(tmp), inputs)
        rng = np.random.default_rng(job.seed)
        blocks = time_rounds(modules, make_input, job.latency, rng) if modules else []
    after = process_facts()
    facts = {
        "process": job.process,
        "threads": job.latency.threads if job.latency.threads else torch.get_num_threads(),
        **before,
        "load_1min_after": after["load_1min"],
        "cpu_mhz_after": after["cpu_mhz"],
    }
    rows = [{"process": job.process, **b.as_dict()} for b in blocks]
    return {"blocks": rows, "facts": facts, "skipped": skipped}


def open_models(
    models: tuple[ModelFiles, ...], threads: int | None, workdir: Path, inputs: dict
) -> tuple[dict, dict]:
    """Every (run, runtime) as a callable module; runtimes that cannot open one are skipped with
    their reason (a file a runtime reopens; else the runtime deploys the model anew in
    ``workdir``). ``inputs``: inputs file -> its batch (two rows fix a deployment's shapes)."""
    eager, modules, skipped = {}, {}, {}
    for files in models:
        if files.run_id not in eager:
            eager[files.run_id] = load_model_file(files.model_file).model.eval()
        model = eager[files.run_id]
        if files.runtime == schema.EAGER:
            modules[files.key] = CastInputs(model)
            continue
        example = inputs[files.inputs_file][:2]
        context = DeployContext(example, (), workdir / files.key.replace("@", "-"), threads)
        try:
            modules[files.key] = _deployed(files, model, context)
        except RuntimeUnavailable as err:
            skipped[files.key] = str(err)
    return modules, skipped


def _deployed(files: ModelFiles, model, context: DeployContext):
    runtime = RUNTIMES.get(files.runtime)
    if files.runtime_file is not None:
        return runtime.reopen(Path(files.runtime_file), model, context).module
    return deploy(files.runtime, model, context).module


def blocks_frame(results: list[dict]) -> pd.DataFrame:
    """Every process's blocks as one table."""
    return pd.DataFrame([row for result in results for row in result["blocks"]])
