"""One job from its specs: train the baseline, or compress it; evaluate, measure, record (what a
run writes and reads back: :mod:`src.pipeline.record`).

A method run needs the fp32 baseline of the same config: it reuses the newest FINISHED baseline
run with the same ``baseline_key`` (or the one ``method.baseline_run_id`` names), or trains it
first as its own run. The variant and its baseline are then evaluated and timed side by side in
this process, so every delta and speedup is measured under the same conditions.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch

from src.core import schema
from src.core.errors import UserError
from src.core.lifecycle import phase
from src.data.sources import build_datamodule
from src.measure.precision import coverage_report
from src.measure.report import measure, size_of
from src.methods import MethodContext, apply_method
from src.pipeline.artifact import BrokenArtifact, load
from src.pipeline.checkpoint import LAST
from src.pipeline.deploy import BaselineRef, check_parity, deploy_all, log_deployments
from src.pipeline.fit import CheckpointedFits, Fitter
from src.pipeline.lookup import (
    ResumeRefused,
    check_trainer_alive,
    find_baseline,
    find_resumable,
    finished_job,
)
from src.pipeline.record import (
    log_inputs,
    log_results,
    log_timing_inputs,
    logged_result,
    open_run,
)
from src.pipeline.reuse import find_step
from src.pipeline.specs import RunSpec
from src.tasks import EvalResult
from src.tracking.liveness import reap_orphans
from src.tracking.mlflow_run import TrackedRun
from src.tracking.store import RunStore

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """A finished run: its id, model, data, evaluation and its task's primary metric."""

    run_id: str
    model: torch.nn.Module
    data: pl.LightningDataModule
    result: EvalResult
    primary_metric: str


FINE_TUNE_CHECKPOINTS = "fine-tune"  # a method run's: fine-tune/<run id>/fit<n>/last.ckpt


def run(spec: RunSpec) -> Outcome:
    """Run the job ``spec`` describes: its baseline, or its method against its baseline; or
    reuse the identical job's FINISHED run (same job key and data), which joins this sweep."""
    store = opened_store(spec)
    done = finished_job(spec, store)
    reused = done and reuse_job(spec, store, done)
    if reused:
        return reused
    if spec.is_baseline:  # trains, unless a parallel job finished it while this one waited
        return claimed_baseline(spec, store, reuse_older=False)
    return run_method(spec, store, resolve_baseline(spec, store))


def opened_store(spec: RunSpec) -> RunStore:
    """The job's store, its orphans (SIGKILLed runs) marked FAILED first: never counted. A user
    the server will not let write is refused here, in one line, before anything runs."""
    store = RunStore(spec.tracking.uri)
    store.check_writable(spec.tracking.experiment)
    for run_id in reap_orphans(store):
        log.warning("run %s was left RUNNING by a process that is gone: marked FAILED", run_id)
    return store


def run_baseline(spec: RunSpec, store: RunStore) -> Outcome:
    """Train the fp32 model, evaluate it, measure it, log it as a ``method=baseline`` run.

    The data is loaded before the run opens: a data error is one line, not a FAILED run."""
    spec = spec.as_baseline()
    pl.seed_everything(spec.seed, workers=True)
    data = load_data(spec)
    fingerprint = data.fingerprint()
    stopped = find_resumable(spec, store, fingerprint)
    try:
        return _train_baseline(spec, store, data, fingerprint, stopped)
    except ResumeRefused as err:  # the stopped run keeps its record; this job starts a new one
        log.warning("%s: training afresh as a new run", err)
        pl.seed_everything(spec.seed, workers=True)
        return _train_baseline(spec, store, data, fingerprint, None)


def _train_baseline(spec: RunSpec, store: RunStore, data, fingerprint: str, stopped) -> Outcome:
    """Train, evaluate, measure and log the baseline, in a new run or in ``stopped`` (resumed
    from its last checkpoint)."""
    with open_run(spec, store, resume=stopped and stopped.info.run_id) as run:
        log_inputs(run, spec, data, fingerprint, stopped)
        folder = stopped.data.tags[schema.CHECKPOINTS] if stopped else spec.output_dir / "ckpt"
        run.set_tags({schema.DATA_FINGERPRINT: fingerprint, schema.CHECKPOINTS: folder})
        model = spec.model.build()
        with phase(f"training {spec.identity.model} for {spec.trainer.max_epochs} epoch(s)"):
            fitter(spec, data, run).fit(model, checkpoints=Path(folder))
        # the whole training state (optimiser, schedule, RNG), to train on from it elsewhere
        run.log_artifact(Path(folder) / LAST, schema.CHECKPOINT_DIR)
        result = evaluate(spec, model, data)
        result.metrics.update(measure_into(run, spec, data, model, result))
        log_results(run, spec, model, data, result)
    return Outcome(run.run_id, model, data, result, spec.task.primary)


def reuse_job(spec: RunSpec, store: RunStore, done) -> Outcome | None:
    """The earlier run ``done`` of this job, when its data is this job's too (its content
    fingerprint): said in one line, tagged as joining this job's sweep, its figures returned."""
    data = load_data(spec)
    if done.data.tags.get(schema.DATA_FINGERPRINT) != data.fingerprint():
        return None
    run_id = done.info.run_id
    log.info(
        "%s: already done by run %s (the same config, code and data): reused, not run again "
        "(rerun=true runs it again)",
        spec.identity.method,
        run_id,
    )
    if spec.parent_run_id and done.data.tags.get(schema.PARENT_RUN_ID) != spec.parent_run_id:
        store.client.set_tag(run_id, schema.JOINED + spec.parent_run_id, "1")
    result = EvalResult(dict(done.data.metrics))
    return Outcome(run_id, None, data, result, spec.task.primary)


def load_data(spec: RunSpec):
    with phase(f"loading {spec.identity.data} {spec.identity.data_variant}".rstrip()):
        return build_datamodule(spec.data)


def resolve_baseline(spec: RunSpec, store: RunStore) -> Outcome:
    """The baseline of this config: named, found in the store by config, or trained now."""
    if spec.method.baseline_run_id:
        return reuse_baseline(
            spec, store, store.baseline_run(spec.method.baseline_run_id).info.run_id
        )
    return claimed_baseline(spec, store, reuse_older=True)


def claimed_baseline(spec: RunSpec, store: RunStore, reuse_older: bool) -> Outcome:
    """The finished baseline of this config, or one trained now. One trainer per baseline,
    wherever the jobs run: parallel jobs of one config wait on the store's claim
    (:mod:`src.tracking.claims`), then reuse what its holder trained.

    Args:
        reuse_older: Reuse a baseline finished before this job began waiting (a method job);
            False (a baseline job) reuses only one a parallel job finished meanwhile.
    """
    since = time.time()
    claim = f"baseline-{spec.baseline_key[:16]}"
    with store.claim(claim, spec.trainer.baseline_wait_s):
        found = find_baseline(spec, store)
        if found is not None and not reuse_older and (found.info.end_time or 0) < since * 1000:
            found = None
        if found is None:
            check_trainer_alive(spec, store, since)
            if reuse_older:  # a method job says why it trains first; a baseline job just trains
                log.info("no finished baseline for this config: training it first, as its own run")
            return run_baseline(spec, store)
    return reuse_baseline(spec, store, found.info.run_id)


def reuse_baseline(spec: RunSpec, store: RunStore, run_id: str) -> Outcome:
    """The finished baseline run ``run_id``: its model, data and logged evaluation."""
    log.info("reusing baseline run %s", run_id)
    data = load_data(spec)
    try:
        model = load(run_id, store.uri).model
    except BrokenArtifact as err:
        raise record_broken_baseline(spec, store, run_id, err) from None
    result = logged_result(store, run_id, spec)
    if result is None:  # logged under another protocol, or before units were kept
        with phase("scoring the baseline"):
            result = spec.task.evaluate(model, data, spec.seed)
    return Outcome(run_id, model, data, result, spec.task.primary)


def record_broken_baseline(spec: RunSpec, store: RunStore, run_id: str, err) -> UserError:
    """A baseline that cannot be loaded: this method run is recorded FAILED with the line that
    says so, and a baseline found by config is tagged so that the next run skips it."""
    if spec.method.baseline_run_id:
        fix = "name another baseline run, or drop method.baseline_run_id to use this config's"
    else:
        store.client.set_tag(run_id, schema.ARTIFACT_BROKEN, str(err)[:1000])
        fix = (
            "the next run of this config skips it and trains a new baseline (or pass "
            "method.baseline_run_id=<another baseline run>)"
        )
    error = UserError(f"{err}; {fix}")
    try:
        with open_run(spec, store, baseline_run_id=run_id):
            raise error
    except UserError:
        return error


def run_method(spec: RunSpec, store: RunStore, baseline: Outcome) -> Outcome:
    """Compress the baseline, then evaluate and measure both side by side in this process; a
    fine-tuning that was stopped resumes in its run from its checkpoints."""
    fingerprint = baseline.data.fingerprint()
    stopped = find_resumable(spec, store, fingerprint)
    try:
        return _compress(spec, store, baseline, fingerprint, stopped)
    except ResumeRefused as err:  # the stopped run keeps its record; this job starts a new one
        log.warning("%s: compressing afresh as a new run", err)
        return _compress(spec, store, baseline, fingerprint, None)


def _compress(spec: RunSpec, store: RunStore, baseline: Outcome, fingerprint: str, stopped):
    resume = stopped and stopped.info.run_id
    with open_run(spec, store, baseline_run_id=baseline.run_id, resume=resume) as run:
        data = baseline.data
        log_inputs(run, spec, data, fingerprint, stopped)
        pl.seed_everything(spec.seed, workers=True)
        fresh = spec.output_dir / FINE_TUNE_CHECKPOINTS / run.run_id  # never another run's files
        folder = stopped.data.tags[schema.CHECKPOINTS] if stopped else fresh
        run.set_tags({schema.DATA_FINGERPRINT: fingerprint, schema.CHECKPOINTS: str(folder)})
        context = MethodContext(
            data=data,
            fine_tune=CheckpointedFits(fitter(spec, data, run), Path(folder)).fit,
            task=spec.task,
            report_step=partial(report_step, spec, data, run, baseline.model),
            log_table=run.log_table,
            seed=spec.seed,
            reuse=partial(reused_step, spec, store, run),
            reseed=partial(pl.seed_everything, spec.seed, workers=True),
        )
        asked = spec.method.to_dict()
        with phase(f"compressing with {spec.identity.method}"):
            model = apply_method(baseline.model, spec.method, context)
        if spec.method.to_dict() != asked:  # a choice made on data (mixed's fp32 layers)
            run.set_tags({schema.METHOD_SETTLED: json.dumps(spec.method.to_dict())})
        result = evaluate(spec, model, data)
        ref = BaselineRef(baseline.model, baseline.run_id, store, baseline.result)
        result.metrics.update(measure_into(run, spec, data, model, result, baseline=ref))
        result.metrics.update(deltas(result.metrics, baseline.result.metrics))
        with phase("pairing the variant with its baseline (paired interval, test)"):
            paired, units, tags = spec.task.paired(result, baseline.result, spec.seed)
        run.set_tags(tags)
        result.metrics.update(paired)
        if units is not None:
            result.tables[schema.PAIRED_TABLE] = units
        with phase("fidelity: the variant's answers against its baseline's, unit by unit"):
            result.metrics.update(spec.task.fidelity(result, baseline.result, spec.seed))
        result.metrics.update(reference_metrics(baseline))
        table, int8_fraction = coverage_report(model)
        result.tables["int8_coverage"] = table
        result.metrics[schema.INT8_FRACTION] = int8_fraction
        log_results(run, spec, model, data, result)
    return Outcome(run.run_id, model, data, result, spec.task.primary)


def reused_step(spec: RunSpec, store: RunStore, run: TrackedRun, label: str, step):
    """A chain's first step from the finished run that computed it (:mod:`.reuse`), or None."""
    found = find_step(store, run.run_id, step)
    if found is None:
        return None
    run_id, model = found
    log.info(
        "chain step %s: reusing the model of run %s (same config, data, seed, code)", label, run_id
    )
    run.set_tags({f"{schema.STEP_REUSED}{label}": run_id})
    return model


def fitter(spec: RunSpec, data, run: TrackedRun) -> Fitter:
    return Fitter(spec.task, data, spec.optim, spec.trainer, run, spec.output_dir)


def report_step(spec: RunSpec, data, run: TrackedRun, baseline, label: str, model) -> None:
    """A chain's intermediate model: its test metrics and size as ``chain/<label>/...``."""
    metrics = {**evaluate(spec, model, data).metrics, **size_of(model, baseline)}
    keep = (schema.TEST, schema.SIZE)
    run.log_metrics(
        {f"{schema.CHAIN}{label}/{k}": v for k, v in metrics.items() if k.startswith(keep)}
    )


def reference_metrics(baseline: Outcome) -> dict[str, float]:
    """The baseline's (teacher's) own figures, logged beside the variant's for reference."""
    metrics = {**baseline.result.metrics, **size_of(baseline.model)}
    keep = (schema.TEST, schema.TUNING, schema.SIZE_MB, schema.SIZE_PARAMS)
    return {f"{schema.REFERENCE}{k}": v for k, v in metrics.items() if k.startswith(keep)}


def evaluate(spec: RunSpec, model, data) -> EvalResult:
    started = time.perf_counter()
    with phase("evaluating (scoring the test units, bootstrap)"):
        result = spec.task.evaluate(model.cpu(), data, spec.seed)
    result.metrics[schema.EVAL_SECONDS] = time.perf_counter() - started
    return result


def measure_into(
    run: TrackedRun,
    spec: RunSpec,
    data,
    model,
    result: EvalResult,
    *,
    baseline: BaselineRef | None = None,
) -> dict[str, float]:
    """Deploy to every runtime (and check parity), then size and latency of all of it side by
    side (with the ``baseline`` when there is one); setup as tags."""
    with phase(f"deploying to {', '.join(spec.runtimes.deployed) or 'no other runtime'}"):
        deployments = deploy_all(
            spec.runtimes,
            data,
            model,
            spec.latency.threads,
            calibration_batches=spec.method.calibration_count,
            baseline=baseline,
        )
    with deployments.workdir:
        with phase("checking each runtime's answers (parity on the test set)"):
            checks = check_parity(
                deployments,
                spec.runtimes,
                spec.task,
                data,
                model,
                result,
                spec.seed,
                baseline=baseline,
                tables=result.tables,  # each runtime's paired table, logged with the run's
            )
        with phase(f"measuring size and latency (batch sizes {list(spec.latency.batch_sizes)})"):
            metrics, tags = measure(
                model,
                data.example_inputs,
                spec.latency,
                None if baseline is None else baseline.model,
                deployments.modules(),
            )
        run.set_tags(tags)
        log_deployments(run, deployments)
    log_timing_inputs(run, data, max(spec.latency.batch_sizes))
    return {**metrics, **checks}


def deltas(metrics: dict, baseline: dict) -> dict[str, float]:
    """Change of every test metric against the baseline, evaluated in this same process. An
    interval's ends are left out: the difference of two models' bounds is no interval of their
    difference (``delta/<primary>_ci_low``/``_ci_high`` are the paired interval's, from
    :meth:`Task.paired`)."""
    return {
        schema.delta_of(key): value - baseline[key]
        for key, value in metrics.items()
        if key.startswith(schema.TEST) and key in baseline and not _is_bound(key)
    }


def _is_bound(key: str) -> bool:
    return key.endswith((schema.CI_LOW, schema.CI_HIGH))
