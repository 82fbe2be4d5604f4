"""What a job writes to its MLflow run, and what it reads back from an earlier one: the run
opened with the schema's tags, its config, its results and model, and a baseline run's own
evaluation when it can stand in for scoring the baseline again.

:mod:`src.pipeline.flow` (the job's flow) and :mod:`src.pipeline.sensitivity` record through here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from mlflow.exceptions import MlflowException

from src.core import schema
from src.core.errors import first_line
from src.pipeline.artifact import log_model
from src.pipeline.lookup import ResumeRefused
from src.pipeline.specs import RunSpec
from src.tasks import EvalResult
from src.tracking.mlflow_run import TrackedRun, tracked_run
from src.tracking.store import RunStore


def logged_result(store: RunStore, run_id: str, spec: RunSpec) -> EvalResult | None:
    """The baseline run's own evaluation, when it was made under this job's protocol (the same
    ``task.evaluation.*`` and seed): its test metrics, per-unit table and the tables the task's
    fidelity reads (:attr:`Task.fidelity_tables`; a run logged before them has none, and its
    variants go without ``fidelity/*``). Scoring a reused baseline again would give the same
    numbers at the cost of a full pass over the test set."""
    run = store.get(run_id)
    protocol = {
        k: v
        for k, v in spec.config.params.items()
        if k.startswith("task.evaluation.") or k == "seed"
    }
    if any(run.data.params.get(k) != str(v) for k, v in protocol.items()):
        return None
    units = store.read_table(run_id, schema.UNITS_TABLE)
    if units is None:
        return None
    kept = (schema.TEST, schema.TUNING)
    metrics = {k: v for k, v in run.data.metrics.items() if k.startswith(kept)}
    tables = {name: store.read_table(run_id, name) for name in spec.task.fidelity_tables}
    return EvalResult(metrics, {k: v for k, v in tables.items() if v is not None}, units)


def open_run(
    spec: RunSpec, store: RunStore, baseline_run_id: str | None = None, resume: str | None = None
):
    """The job's MLflow run, tagged by the run schema."""
    tags = schema.run_tags(
        spec.identity,
        primary_metric=spec.task.primary,
        metric_specs=spec.task.metrics,
        baseline_key=spec.baseline_key,
        baseline_run_id=baseline_run_id,
        parent_run_id=spec.parent_run_id,
        sweep_id=spec.sweep_id,
        extra={
            **spec.data_tags,
            schema.TORCH_VERSION: torch.__version__,
            schema.TRAIN_THREADS: spec.trainer.threads or torch.get_num_threads(),
            schema.JOB_KEY: spec.job_key,
            **({schema.STEP_KEY: spec.step_key} if spec.step_key else {}),
        },
    )
    return tracked_run(store, spec.tracking.experiment, run_name(spec), tags, resume=resume)


def run_name(spec: RunSpec) -> str:
    """``static-dyad-brand3-f0-s0``: method, model, data set, fold, seed tell runs apart."""
    if spec.tracking.run_name:
        return spec.tracking.run_name
    i = spec.identity
    fold = "" if i.fold == schema.NO_FOLD else f"-f{i.fold}"
    return f"{i.method}-{i.model}-{i.data_variant or i.data}{fold}-s{i.seed}"


def log_config(run: TrackedRun, spec: RunSpec, with_method: bool) -> None:
    """The resolved config as params and YAML, plus Hydra's own ``.hydra/`` folder. A baseline
    logs it without the method, which would otherwise make it look like a variant."""
    record = spec.config
    run.log_params(record.params if with_method else record.baseline_params)
    run.log_text(record.yaml if with_method else record.baseline_yaml, schema.CONFIG_ARTIFACT)
    if record.hydra_dir is not None and record.hydra_dir.is_dir():
        run.log_artifact(record.hydra_dir, schema.HYDRA_ARTIFACT)


def log_dataset(run: TrackedRun, spec: RunSpec, data, fingerprint: str) -> None:
    """What the run trained and was evaluated on, as an MLflow dataset input: the data set
    (name, its content ``fingerprint`` as digest, where it was read, its profile) and, on the
    input, this run's fold, seed and sizes per role."""
    identity = spec.identity
    name = "-".join(part for part in (identity.data, identity.data_variant) if part)
    synthetic = spec.data.get("synthetic")
    generated = f"generated: {json.dumps(synthetic, default=str)}" if synthetic else identity.data
    source = spec.data.get("root") or generated
    facts = {"fold": identity.fold, "seed": spec.seed, **data.describe()}
    context = "training and evaluation"
    run.log_dataset(name, fingerprint, str(source), facts, context, data.profile())


def log_inputs(run: TrackedRun, spec: RunSpec, data, fingerprint: str, stopped) -> None:
    """The config (a baseline's without the method), the dataset, and where this attempt
    writes (a resumed run lists every attempt's folder). A resumed run whose logged config
    conflicts with this one's refuses (:class:`ResumeRefused`)."""
    earlier = stopped.data.tags.get(schema.OUTPUT_DIRS, "") if stopped else ""
    run.set_tags({schema.OUTPUT_DIRS: ",".join(filter(None, (earlier, str(spec.output_dir))))})
    try:
        log_config(run, spec, with_method=not spec.is_baseline)
    except MlflowException as err:
        if stopped is None:
            raise
        raise ResumeRefused(
            f"run {run.run_id} cannot be resumed by this command ({first_line(err, 160)})"
        ) from None
    log_dataset(run, spec, data, fingerprint)


def log_results(run: TrackedRun, spec: RunSpec, model, data, result: EvalResult) -> None:
    run.log_metrics(result.metrics)
    run.log_params({f"data_stats.{k}": v for k, v in data.describe().items()})
    for name, table in result.tables.items():
        run.log_table(name, table)
    if result.units is not None:
        run.log_table(schema.UNITS_TABLE, result.units)
    log_model(run, model, spec.model.name, data.artifact_extras(), spec.method.to_dict())


def log_timing_inputs(run: TrackedRun, data, batch: int) -> None:
    """The batch this run was timed on, as ``schema.TIMING_INPUTS`` (``{"x": tensor}``, loaded
    back with ``weights_only=True``): a timing pass times the same inputs in fresh processes
    without loading the data (smaller batches are its first rows, as ``example_inputs`` gives)."""
    artifact = Path(schema.TIMING_INPUTS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / artifact.name
        torch.save({"x": data.example_inputs(batch)}, path)
        run.log_artifact(path, str(artifact.parent))
