"""A run's deployment runtimes: deploy the variant (and its fp32 baseline) to every runtime the
benchmark names, check each gives the eager model's answer, and keep what a deployment ships.

A runtime that cannot take a model is one logged line and a ``runtime.<name>.skipped`` tag, never
a failed run: the other runtimes still measure. Parity is the largest absolute difference of the
outputs on real test inputs and the task's metrics recomputed from the runtime's own outputs on
the whole test set; a runtime whose primary metric moves more than the tolerance (default: the
metric's non-inferiority margin) is marked ``runtime/<name>/parity = 0`` and takes no part in
verdicts. Each runtime is also paired with the fp32 baseline on the same units, so its own
verdict rests on its own interval.

What a runtime ships (the file, the name it is logged under, the metric of its size) and whether
a baseline's logged file stands in for deploying the baseline again are the runtime's own
declarations (:class:`src.runtimes.base.Runtime`): this module names no runtime.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from torch import nn

from src.core import schema
from src.runtimes.base import (
    RUNTIMES,
    DeployContext,
    Deployed,
    RuntimeSpec,
    RuntimeUnavailable,
    deploy,
    max_abs_diff,
)
from src.tasks import EvalResult
from src.tracking.mlflow_run import TrackedRun
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
PARITY_INPUTS = 64  # real test snippets / images compared output by output


@dataclass(frozen=True)
class BaselineRef:
    """The fp32 baseline a method's variant is deployed, checked and timed beside.

    Attributes:
        model: Its eager model.
        run_id: Its run, where a runtime may find the file it shipped for it.
        store: The store that holds that run.
        result: Its evaluation, which each runtime's answer is paired with.
    """

    model: nn.Module
    run_id: str
    store: RunStore
    result: EvalResult


@dataclass
class Deployments:
    """The variant (and its baseline) per runtime, and why a runtime was skipped."""

    pairs: dict[str, tuple[Deployed, Deployed | None]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    workdir: tempfile.TemporaryDirectory = field(default_factory=tempfile.TemporaryDirectory)

    def modules(self) -> dict[str, tuple[nn.Module, nn.Module | None]]:
        """What the latency harness times: per runtime, the variant and its baseline."""
        return {
            name: (variant.module, None if fp32 is None else fp32.module)
            for name, (variant, fp32) in self.pairs.items()
        }


def deploy_all(
    spec: RuntimeSpec,
    data,
    model: nn.Module,
    threads: int | None,
    *,
    calibration_batches: int,
    baseline: BaselineRef | None = None,
) -> Deployments:
    """``model`` (and the ``baseline``'s) in every runtime of ``spec``.

    The baseline's file is reopened from its run where the runtime allows it and the run logged
    one (exporting costs tens of seconds), else deployed here. ``calibration_batches``: how many
    calibration batches set a runtime's static int8 ranges (the method's own count)."""
    out = Deployments()
    if not spec.deployed:
        return out
    root = Path(out.workdir.name)
    # The batches the eager method calibrated on (the same loader, in the same order).
    batches = islice(data.calibration_dataloader(), calibration_batches)
    calibration = [batch["x"] for batch in batches]
    example = data.example_inputs(2)  # one batch fixes every dimension but the batch
    for name in spec.deployed:
        context = DeployContext(example, calibration, root / name, threads)
        try:
            variant = deploy(name, model, context)
            fp32 = None
            if baseline is not None:
                base_context = DeployContext(context.example, (), root / f"{name}-fp32", threads)
                fp32 = _logged(name, baseline, base_context) or deploy(
                    name, baseline.model, base_context
                )
        except RuntimeUnavailable as err:
            log.warning("runtime %s skipped: %s", name, err)
            out.skipped[name] = str(err)
            continue
        out.pairs[name] = (variant, fp32)
    return out


def _logged(name: str, baseline: BaselineRef, context: DeployContext) -> Deployed | None:
    """The baseline run's own file for runtime ``name``, when the runtime reuses one and the run
    logged it."""
    runtime = RUNTIMES.get(name)
    if not runtime.reuses_baseline_artifact:
        return None
    if not baseline.store.has_artifact(baseline.run_id, runtime.artifact):
        return None
    Path(context.workdir).mkdir(parents=True, exist_ok=True)
    path = Path(baseline.store.download(baseline.run_id, runtime.artifact, context.workdir))
    return runtime.reopen(path, baseline.model, context)


def check_parity(
    deployments: Deployments,
    spec: RuntimeSpec,
    task,
    data,
    model,
    eager,
    seed: int,
    *,
    baseline: BaselineRef | None = None,
    tables: dict | None = None,
) -> dict[str, float]:
    """Per runtime: max |difference| of the outputs, the test metrics from the runtime's own
    outputs, whether the primary metric stayed within the tolerance of the eager variant's
    (``eager``, its evaluation: ``parity`` 1.0) or not (0.0), and, given the ``baseline``, the
    runtime's own paired difference from its evaluation (``runtime/<name>/delta/<metric>`` with
    its interval), whose per-unit table goes into ``tables`` (under
    :func:`src.core.schema.runtime_paired_table`) for the board to recombine over folds."""
    inputs = [data.example_inputs(PARITY_INPUTS)]
    tolerance = spec.tolerance(task.metric(task.primary))
    metrics: dict[str, float] = {}
    for name, (variant, _) in deployments.pairs.items():
        diff = max_abs_diff(model, variant.module, inputs)
        found = task.evaluate(variant.module, data, seed)
        moved = abs(found.metrics[task.primary] - eager.metrics[task.primary])
        if moved > tolerance:
            log.warning(
                "runtime %s fails parity: %s moves by %.4f (> %.4f); it takes no part in verdicts",
                name,
                task.primary,
                moved,
                tolerance,
            )
        metrics[schema.runtime_check(name, "max_abs_diff")] = diff
        metrics[schema.runtime_check(name, "parity")] = float(moved <= tolerance)
        own = {k: v for k, v in found.metrics.items() if k.startswith(schema.TEST)}
        if baseline is not None:
            fp32 = baseline.result
            own[schema.delta_of(task.primary)] = (
                found.metrics[task.primary] - fp32.metrics[task.primary]
            )
            paired, table, _ = task.paired(found, fp32, seed)
            own.update(paired)
            if tables is not None and table is not None:
                tables[schema.runtime_paired_table(name)] = table
        metrics.update({schema.runtime_check(name, k): v for k, v in own.items()})
        metrics.update(_kernels_and_file(name, variant))
    return metrics


def _kernels_and_file(name: str, variant: Deployed) -> dict[str, float]:
    out = {}
    if variant.int8_ops is not None:
        out[schema.runtime_check(name, "int8_ops")] = variant.int8_ops
        out[schema.runtime_check(name, "float_ops")] = variant.float_ops
    if variant.artifact is not None:  # the board's file column, whatever the runtime
        out[schema.runtime_check(name, schema.RUNTIME_FILE_MB)] = variant.size_mb
    size_metric = RUNTIMES.get(name).size_metric
    if variant.artifact is not None and size_metric is not None:
        out[size_metric] = variant.size_mb
    return out


def log_deployments(run: TrackedRun, deployments: Deployments) -> None:
    """Tags (how each runtime ran the variant, why one was skipped) and the shipped files, each
    under the name its runtime declares."""
    tags = {schema.runtime_tag(n, "form"): v.form for n, (v, _) in deployments.pairs.items()}
    tags.update({schema.runtime_tag(n, "skipped"): r for n, r in deployments.skipped.items()})
    run.set_tags(tags)
    for name, (variant, _) in deployments.pairs.items():
        artifact = RUNTIMES.get(name).artifact
        if artifact is None or variant.artifact is None:
            continue
        folder, _, file = artifact.rpartition("/")
        shipped = variant.artifact
        if shipped.name != file:  # logged under the declared name, where a later run looks
            shipped = Path(shutil.copy(shipped, Path(deployments.workdir.name) / file))
        run.log_artifact(shipped, folder or None)
