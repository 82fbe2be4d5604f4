"""Comparative CPU latency: all variants are timed interleaved so machine noise hits them alike.

Absolute milliseconds on a shared machine are not trustworthy; ratios measured in the same
interleaved session are. Report ``speedups`` next to the raw percentiles.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.core.threads import torch_threads

MIN_ITERS = 5  # timed calls per block, however slow a call: the interval needs a few per round


@dataclass(frozen=True)
class LatencySpec:
    """How to time models. The defaults here are the config's (``registry/benchmark`` holds
    them; ``conf/benchmark/cpu.yaml`` sets only the batch sizes, from the data). They are the
    short in-run record of a run beside its baseline; speed that compares across runs comes from
    a timing pass over fresh processes (``python -m src.timing``), which reuses this spec per
    process with its own settings (``conf/timing.yaml``).

    Attributes:
        batch_sizes: Batch sizes to time; the largest one also yields throughput.
        warmup: Untimed calls before every timed block (0 measures cold calls).
        iters: Timed calls per block.
        threads: ``torch.set_num_threads`` value during measurement, fixed and recorded as a
            tag (2: every figure of the README was timed so); None keeps the current one.
        rounds: Interleaved rounds; each model gets ``rounds * iters`` timings per batch size.
        large_batch_rounds: Rounds at every batch size but the smallest, at most ``rounds``
            (None: ``rounds``).
            A large batch's blocks are long and its call-to-call noise small, so fewer rounds
            give it about the same interval for a fraction of the time (README: sizing).
        block_seconds: Cap on a timed block's length: where the slowest model's call takes
            longer than ``block_seconds / iters`` (large batches), a batch size gets fewer
            calls per block (at least :data:`MIN_ITERS`) and proportionally fewer warm-up
            calls (at least 1), the same for every model. None: always ``iters``.
    """

    batch_sizes: tuple[int, ...] = (1, 64)
    warmup: int = 3
    iters: int = 10
    threads: int | None = 2
    rounds: int = 2
    block_seconds: float | None = 0.5
    large_batch_rounds: int | None = None

    def __post_init__(self) -> None:
        given = self.batch_sizes
        sizes = tuple(given) if isinstance(given, Sequence) and not isinstance(given, str) else ()
        if not sizes or not all(_is_int(b) and b > 0 for b in sizes):
            raise ConfigError(
                f"LatencySpec.batch_sizes={self.batch_sizes!r} must be a non-empty tuple of "
                "positive ints; e.g. batch_sizes=(1, 64)"
            )
        # Lists (and Hydra ListConfigs) become a hashable tuple of plain ints.
        object.__setattr__(self, "batch_sizes", tuple(int(b) for b in sizes))
        _check_int("warmup", self.warmup, minimum=0)
        _check_int("iters", self.iters, minimum=1)
        _check_int("rounds", self.rounds, minimum=1)
        if self.large_batch_rounds is not None:
            _check_int("large_batch_rounds", self.large_batch_rounds, minimum=1)
        if self.threads is not None:
            _check_int("threads", self.threads, minimum=1, hint="or None to keep torch's setting")
        if self.block_seconds is not None and not float(self.block_seconds) > 0:
            raise ConfigError(
                f"LatencySpec.block_seconds={self.block_seconds!r} must be > 0 seconds, or None "
                "to time every block with `iters` calls"
            )

    def rounds_at(self, batch: int) -> int:
        """Rounds at batch size ``batch``."""
        if self.large_batch_rounds is None or batch == min(self.batch_sizes):
            return self.rounds
        return min(self.rounds, self.large_batch_rounds)

    def rounds_label(self) -> str:
        """``6`` or ``6 (3 at bs128)``: the rounds, as a pass reports them."""
        larger = [b for b in self.batch_sizes if self.rounds_at(b) != self.rounds]
        if not larger:
            return str(self.rounds)
        at = ",".join(map(str, larger))
        return f"{self.rounds} ({self.rounds_at(larger[0])} at bs{at})"

    def calls(self, seconds_per_call: float) -> tuple[int, int]:
        """(warm-up, timed) calls per block for a model whose call takes ``seconds_per_call``."""
        if self.block_seconds is None or seconds_per_call * self.iters <= self.block_seconds:
            return self.warmup, self.iters
        iters = max(MIN_ITERS, min(self.iters, math.ceil(self.block_seconds / seconds_per_call)))
        return max(1, self.warmup * iters // self.iters), iters


def time_calls(
    model: nn.Module,
    example: Any,
    warmup: int,
    iters: int,
    clock: Callable[[], float] | None = None,
) -> np.ndarray:
    """Time ``iters`` forward calls in eval mode under ``torch.inference_mode()``.

    Args:
        model: Module to call; its (and its submodules') training flags are restored afterwards.
        example: A tensor, or a tuple/list of positional inputs.
        warmup: Untimed calls first (allocator, oneDNN/fbgemm kernel selection, caches).
        iters: Timed calls.
        clock: Seconds now (a test's fake clock); None: ``time.perf_counter``.

    Returns:
        Seconds per call, shape ``(iters,)``.
    """
    clock = clock or time.perf_counter  # looked up per call: a test swaps the module's clock
    args = tuple(example) if isinstance(example, list | tuple) else (example,)
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    times = np.empty(iters)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(*args)
            for i in range(iters):
                start = clock()
                model(*args)
                times[i] = clock() - start
    finally:
        # Restored per module: model.train(flag) would flatten deliberately mixed flags.
        for module, flag in flags:
            module.training = flag
    return times


def compare_latency(
    models: Mapping[str, nn.Module],
    make_input: Callable[[int], Any],
    spec: LatencySpec | None = None,
) -> dict[str, dict[str, float]]:
    """Time several model variants interleaved and summarise each.

    Args:
        models: Name to model; every model gets the same input objects.
        make_input: Returns the input (tensor or tuple of tensors) for a batch size.
        spec: Timing settings; defaults to ``LatencySpec()``.

    Returns:
        Per model: ``latency/ms_p50_bs{b}`` and ``latency/ms_p90_bs{b}`` for every batch size b,
        and ``throughput/samples_s_bs{N}`` for the largest batch size N.
    """
    timings = time_interleaved(models, make_input, spec)
    return summarise(timings, list(models))


def time_interleaved(
    models: Mapping[str, nn.Module],
    make_input: Callable[[int], Any],
    spec: LatencySpec | None = None,
    clock: Callable[[], float] | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """Seconds per call, ``(rounds, iters)`` per batch size and model, timed interleaved
    (what :func:`compare_latency` summarises and :func:`speedup_intervals` resamples);
    ``clock``: a test's fake one."""
    spec = spec or LatencySpec()
    if not models:
        raise ValueError("compare_latency needs at least one model in `models`")
    with torch_threads(spec.threads):
        return {
            b: _interleaved(models, make_input(b), spec, clock, spec.rounds_at(b))
            for b in spec.batch_sizes
        }


def summarise(
    timings: dict[int, dict[str, np.ndarray]], names: list[str]
) -> dict[str, dict[str, float]]:
    """:func:`compare_latency`'s summary of :func:`time_interleaved`'s timings."""
    return {name: _summarise({b: t[name].ravel() for b, t in timings.items()}) for name in names}


def speedup_intervals(
    timings: dict[int, dict[str, np.ndarray]],
    baseline: str,
    candidate: str,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap intervals of the speedup (ratio of median times) at batch 1 and at
    the largest batch, resampling each model's calls within each interleaved round (the rounds
    stay paired: the same load hit both models in a round).

    Returns:
        ``latency/speedup_bs1_ci_low``/``_ci_high`` and ``latency/speedup_bsN_ci_low``/
        ``_ci_high``.
    """
    rng = np.random.default_rng(seed)
    largest, out = max(timings), {}
    for batch, name in ((1, schema.SPEEDUP_BS1), (largest, schema.SPEEDUP_BSN)):
        if batch not in timings:
            continue
        ratios = _median(timings[batch][baseline], n_boot, rng) / _median(
            timings[batch][candidate], n_boot, rng
        )
        low, high = np.quantile(ratios, [(1 - ci) / 2, (1 + ci) / 2])
        low_name, high_name = schema.interval(name)
        out[low_name], out[high_name] = float(low), float(high)
    return out


def _median(times: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Medians of ``n_boot`` resamples of ``(rounds, iters)`` times, drawn within each round."""
    rounds, iters = times.shape
    picks = rng.integers(0, iters, size=(n_boot, rounds, iters))
    return np.median(np.take_along_axis(np.broadcast_to(times, picks.shape), picks, 2), (1, 2))


def speedups(baseline: Mapping[str, float], candidate: Mapping[str, float]) -> dict[str, float]:
    """Speedup of ``candidate`` over ``baseline`` (> 1 means the candidate is faster).

    Args:
        baseline: One model's entry from ``compare_latency``.
        candidate: Another model's entry, ideally from the same ``compare_latency`` call.

    Returns:
        ``latency/speedup_bs1`` (when both measured batch size 1) and ``latency/speedup_bsN``
        for the largest batch size N.

    Raises:
        ValueError: If the two entries were measured with different largest batch sizes.
    """
    largest = _largest_batch(baseline)
    if _largest_batch(candidate) != largest:
        raise ValueError(
            "baseline and candidate have different largest batch sizes; measure both with the "
            "same LatencySpec, ideally in one compare_latency call"
        )
    key, bs1 = schema.latency_p50(largest), schema.LATENCY_BS1
    result = {schema.SPEEDUP_BSN: baseline[key] / candidate[key]}
    if bs1 in baseline and bs1 in candidate:
        result[schema.SPEEDUP_BS1] = baseline[bs1] / candidate[bs1]
    return result


def _interleaved(
    models: Mapping[str, nn.Module], example: Any, spec: LatencySpec, clock, rounds: int
) -> dict[str, np.ndarray]:
    """Per-call seconds per model, ``(rounds, iters)``, timed in alternating blocks."""
    names = list(models)
    warmup, iters = spec.calls(slowest_call(models, example, spec.block_seconds, clock))
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for r in range(rounds):
        # Rotating the order keeps any "first after a switch" penalty from always hitting one model.
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            blocks[name].append(time_calls(models[name], example, warmup, iters, clock))
    return {name: np.stack(parts) for name, parts in blocks.items()}


def slowest_call(
    models: Mapping[str, nn.Module],
    example: Any,
    cap: float | None,
    clock: Callable[[], float] | None = None,
) -> float:
    """Seconds of the slowest model's second call (the first one warms up); 0 without a cap."""
    if cap is None:
        return 0.0
    return max(float(time_calls(m, example, 1, 1, clock=clock)[0]) for m in models.values())


def _summarise(times_by_batch: dict[int, np.ndarray]) -> dict[str, float]:
    """Percentiles in ms per batch size, and throughput at the largest batch size."""
    summary: dict[str, float] = {}
    for batch, times in times_by_batch.items():
        summary[schema.latency_p50(batch)] = float(np.percentile(times, 50)) * 1e3
        summary[schema.latency_p90(batch)] = float(np.percentile(times, 90)) * 1e3
    largest = max(times_by_batch)
    p50_seconds = float(np.percentile(times_by_batch[largest], 50))
    summary[schema.throughput(largest)] = largest / p50_seconds
    return summary


def _largest_batch(entry: Mapping[str, float]) -> int:
    """The N of the ``throughput/samples_s_bs{N}`` key ``compare_latency`` wrote."""
    prefix = schema.THROUGHPUT
    sizes = [int(key.removeprefix(prefix)) for key in entry if key.startswith(prefix)]
    if len(sizes) != 1:
        raise ValueError(f"expected one '{prefix}<N>' key from compare_latency, got {sizes}")
    return sizes[0]


def _is_int(value: object) -> bool:
    """Integers (numpy ones too), but not bools, which Python treats as ints."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(field: str, value: object, minimum: int, hint: str = "") -> None:
    """Raise a ConfigError naming the LatencySpec field when ``value`` is not an int >= minimum."""
    if not _is_int(value) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        extra = f", {hint}" if hint else ""
        raise ConfigError(f"LatencySpec.{field}={value!r} is invalid: set {field} to {kind}{extra}")
