"""A run's deployment runtimes: deploy the variant (and its fp32 baseline) to every runtime the
benchmark names, check each gives the eager model's answer, and keep what a deployment ships.

A runtime that cannot take a model is one logged line and a ``runtime.<name>.skipped`` tag, never
a failed run: the other runtimes still measure. Parity is the largest absolute difference of the
outputs on real test inputs and the task's metrics recomputed from the runtime's own outputs on
the whole test set; a runtime whose primary metric moves more than the tolerance is marked
``runtime/<name>/parity = 0`` and takes no part in verdicts.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from torch import nn

from src.core import schema
from src.measure.onnx import RuntimeUnavailable, max_abs_diff
from src.measure.runtimes import ONNXRUNTIME, DeployContext, Deployed, RuntimeSpec, deploy
from src.measure.runtimes import open_session as _open_session
from src.tracking.mlflow_run import TrackedRun
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
PARITY_INPUTS = 64  # real test snippets / images compared output by output
ONNX_ARTIFACT = "model/model.onnx"


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
    baseline: tuple[nn.Module, str, RunStore] | None = None,
) -> Deployments:
    """``model`` (and ``baseline``: its model, run id and store) in every runtime of ``spec``.

    The baseline's ONNX file is read from its run when it logged one (exporting costs tens of
    seconds), else exported here."""
    out = Deployments()
    root = Path(out.workdir.name)
    calibration = [batch["x"] for batch in islice(data.calibration_dataloader(), 4)]
    for name in spec.deployed:
        context = DeployContext(data.example_inputs(2), calibration, root / name, threads)
        try:
            variant = deploy(name, model, context)
            fp32 = None
            if baseline is not None:
                base_context = DeployContext(context.example, (), root / f"{name}-fp32", threads)
                fp32 = _logged(name, baseline, base_context) or deploy(
                    name, baseline[0], base_context
                )
        except RuntimeUnavailable as err:
            log.warning("runtime %s skipped: %s", name, err)
            out.skipped[name] = str(err)
            continue
        out.pairs[name] = (variant, fp32)
    return out


def _logged(name: str, baseline, context: DeployContext) -> Deployed | None:
    """The baseline run's own ONNX file, when it logged one."""
    model, run_id, store = baseline
    if name != ONNXRUNTIME or not store.has_artifact(run_id, ONNX_ARTIFACT):
        return None
    Path(context.workdir).mkdir(parents=True, exist_ok=True)
    path = Path(store.download(run_id, ONNX_ARTIFACT, context.workdir))
    return _open_session(path, model, context, "ORT fp32")


def check_parity(
    deployments: Deployments, spec: RuntimeSpec, task, data, model, eager_metrics, seed: int
) -> dict[str, float]:
    """Per runtime: max |difference| of the outputs, the test metrics from the runtime's own
    outputs, and whether the primary metric stayed within the tolerance (1.0) or not (0.0)."""
    inputs = [data.example_inputs(PARITY_INPUTS)]
    metrics: dict[str, float] = {}
    for name, (variant, _) in deployments.pairs.items():
        diff = max_abs_diff(model, variant.module, inputs)
        found = task.evaluate(variant.module, data, seed).metrics
        moved = abs(found[task.primary] - eager_metrics[task.primary])
        ok = moved <= spec.parity_tolerance
        if not ok:
            log.warning(
                "runtime %s fails parity: %s moves by %.4f (> %.4f); it takes no part in verdicts",
                name, task.primary, moved, spec.parity_tolerance,
            )  # fmt: skip
        metrics[schema.runtime_check(name, "max_abs_diff")] = diff
        metrics[schema.runtime_check(name, "parity")] = float(ok)
        for key, value in found.items():
            if key.startswith(schema.TEST):
                metrics[schema.runtime_check(name, key)] = value
        if variant.int8_ops is not None:
            metrics[schema.runtime_check(name, "int8_ops")] = variant.int8_ops
            metrics[schema.runtime_check(name, "float_ops")] = variant.float_ops
        if variant.artifact is not None and name == ONNXRUNTIME:
            metrics[schema.SIZE_ONNX_MB] = variant.size_mb
    return metrics


def log_deployments(run: TrackedRun, deployments: Deployments) -> None:
    """Tags (how each runtime ran the variant, why one was skipped) and the shipped files."""
    tags = {schema.runtime_tag(n, "form"): v.form for n, (v, _) in deployments.pairs.items()}
    tags.update({schema.runtime_tag(n, "skipped"): r for n, r in deployments.skipped.items()})
    run.set_tags(tags)
    for name, (variant, _) in deployments.pairs.items():
        if name == ONNXRUNTIME and variant.artifact is not None:
            run.log_artifact(variant.artifact, "model")
