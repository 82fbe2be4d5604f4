"""The measurement every run makes: artifact size and side-by-side latency.

A compressed variant is timed interleaved with its own fp32 baseline in the same process, so
``latency/speedup_*`` are ratios taken under the same machine load, never against an old number.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from src.core import schema
from src.measure.environment import measurement_tags
from src.measure.latency import (
    LatencySpec,
    speedup_intervals,
    speedups,
    summarise,
    time_interleaved,
)
from src.measure.size import size_metrics, sparse_bytes
from src.models.util import input_dtype
from src.quant.state import portable_state_dict


class CastInputs(nn.Module):
    """Feeds a half-precision model fp32 inputs the way a deployment would: cast, then run."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.dtype = model, input_dtype(model)

    def forward(self, x: torch.Tensor):
        return self.model(x.to(self.dtype))


def artifact_bytes(model: nn.Module) -> bytes:
    """The weights as shipped (the portable state_dict our artifact stores)."""
    buffer = io.BytesIO()
    torch.save(portable_state_dict(model), buffer)
    return buffer.getvalue()


def size_of(model: nn.Module, baseline: nn.Module | None = None) -> dict[str, float]:
    """:func:`size_metrics` of the artifact we ship, with ``size/ratio`` against ``baseline``,
    and ``size/mb_sparse`` (the same weights in a sparse format, see :func:`sparse_bytes`)."""
    baseline_bytes = len(artifact_bytes(baseline)) if baseline is not None else None
    metrics = size_metrics(model, baseline_bytes, serialize=artifact_bytes)
    metrics[schema.SIZE_MB_SPARSE] = len(sparse_bytes(portable_state_dict(model))) / 1e6
    return metrics


def measure(
    model: nn.Module,
    example_inputs: Callable[[int], Any],
    spec: LatencySpec,
    baseline: nn.Module | None = None,
    runtimes: dict[str, tuple[nn.Module, nn.Module | None]] | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Size and latency metrics of ``model`` (and speedups against ``baseline``), plus the tags
    that say how latency was measured.

    Args:
        model: The variant to measure.
        example_inputs: ``example_inputs(batch_size)`` returns one fp32 input batch.
        spec: How to time (batch sizes, warm-up, iterations, rounds, threads).
        baseline: Its fp32 baseline, timed interleaved with it for ``latency/speedup_*``.
        runtimes: Per deployment runtime, the variant and its baseline (None for a baseline
            run) as that runtime runs them; timed in the same interleaved session, logged as
            ``latency/<runtime>/...`` (see :func:`runtime_latency`).
    """
    models = {"model": CastInputs(model)}
    if baseline is not None:
        models["baseline"] = CastInputs(baseline)
    for name, (variant, fp32) in (runtimes or {}).items():
        models[f"model@{name}"] = variant
        if fp32 is not None:
            models[f"baseline@{name}"] = fp32
    timings = time_interleaved(models, example_inputs, spec)
    summary = summarise(timings, list(models))
    metrics = {**size_of(model, baseline), **summary["model"]}
    if baseline is not None:
        metrics.update(speedups(summary["baseline"], summary["model"]))
        metrics.update(speedup_intervals(timings, "baseline", "model"))
    metrics.update(runtime_latency(timings, summary, ["eager", *(runtimes or {})]))
    # The calls actually timed per batch size (spec.block_seconds can shorten large batches).
    calls = {b: times["model"].shape for b, times in timings.items()}
    tags = {**measurement_tags(spec), schema.LATENCY_CALLS: _calls_text(calls)}
    return metrics, tags


def runtime_latency(timings, summary, names: list[str]) -> dict[str, float]:
    """Per runtime R: the variant's percentiles as ``latency/R/...``, its speedup over the fp32
    model in eager (the one reference of every runtime: ``latency/R/speedup_bs1``, ``_bsN``,
    with intervals) and over the fp32 model in R itself (``latency/R/vs_fp32_bs1``, ``_bsN``:
    did compressing buy anything beyond switching runtime?)."""
    reference = "baseline" if "baseline" in summary else "model"
    out: dict[str, float] = {}
    for name in names:
        variant = "model" if name == "eager" else f"model@{name}"
        fp32 = {"eager": reference}.get(name, f"baseline@{name}")
        pairs = [(reference, schema.runtime_speedup(name))]
        if fp32 in summary and fp32 != variant:
            pairs.append((fp32, schema.runtime_vs_fp32(name)))
        out.update({schema.runtime_metric(name, k): v for k, v in summary[variant].items()})
        for ref, prefix in pairs:
            if ref == variant:  # the baseline run in eager: 1.0 by definition, not measured
                continue
            found = {
                **speedups(summary[ref], summary[variant]),
                **speedup_intervals(timings, ref, variant),
            }
            out.update({k.replace(schema.SPEEDUP, prefix, 1): v for k, v in found.items()})
    return out


def _calls_text(calls: dict[int, tuple[int, int]]) -> str:
    """``bs1=3x20,bs128=3x5``: rounds x timed calls per model and batch size."""
    return ",".join(f"bs{b}={rounds}x{iters}" for b, (rounds, iters) in calls.items())
