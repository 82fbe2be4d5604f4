"""Where a measurement was taken: tags that make latency rows comparable (or visibly not)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from src.core import schema
from src.measure.latency import LatencySpec

CPUINFO = Path("/proc/cpuinfo")

# The ISA extensions that decide which int8/bf16 kernels fbgemm/oneDNN can use, hence the speedups.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else ``platform.processor()`` (may be empty)."""
    value = _cpuinfo_field("model name")
    return value if value is not None else platform.processor()


def isa_flags() -> list[str]:
    """The ``ISA_FLAGS`` the CPU advertises, in that order; empty if /proc/cpuinfo is unreadable."""
    present = set((_cpuinfo_field("flags") or "").split())
    return [flag for flag in ISA_FLAGS if flag in present]


def measurement_tags(spec: LatencySpec) -> dict[str, str]:
    """String tags (MLflow-ready) describing the timing settings and the machine.

    Args:
        spec: The settings passed to ``compare_latency``.

    Returns:
        ``latency.*`` settings, ``torch_version``, ``cpu_model``, ``cpu_isa`` (comma-joined) and
        ``quantized_engine``. ``latency.threads`` is the count actually used: torch's current one
        when ``spec.threads`` is None.
    """
    threads = spec.threads if spec.threads is not None else torch.get_num_threads()
    return {
        schema.LATENCY_THREADS: str(threads),
        schema.LATENCY_BATCH_SIZES: ",".join(str(b) for b in spec.batch_sizes),
        schema.LATENCY_WARMUP: str(spec.warmup),
        schema.LATENCY_ITERS: str(spec.iters),
        schema.LATENCY_ROUNDS: spec.rounds_label(),  # "2 (1 at bs128)"
        schema.LATENCY_BLOCK_SECONDS: str(spec.block_seconds),
        schema.TORCH_VERSION: torch.__version__,
        schema.CPU_MODEL: cpu_model(),
        schema.CPU_ISA: ",".join(isa_flags()),
        schema.QUANTIZED_ENGINE: str(torch.backends.quantized.engine),
    }


def _cpuinfo_field(name: str) -> str | None:
    """First value of ``name`` in /proc/cpuinfo, or None when unreadable or missing."""
    try:
        lines = CPUINFO.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def process_facts() -> dict[str, object]:
    """What one timing process ran on: pid, CPU affinity, load average, and the mean CPU clock
    in MHz where readable (``/proc/cpuinfo``; None elsewhere)."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = []
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "pid": os.getpid(),
        "affinity": ",".join(map(str, affinity)),
        "load_1min": load,
        "cpu_mhz": _mean_mhz(),
    }


def _mean_mhz() -> float | None:
    try:
        lines = CPUINFO.read_text(errors="replace").splitlines()
    except OSError:
        return None
    values = [
        float(value)
        for key, sep, value in (line.partition(":") for line in lines)
        if sep and key.strip() == "cpu MHz"
    ]
    return sum(values) / len(values) if values else None
