"""Timing rounds in one process of a timing pass: every model once per round, in a fresh random
order each round, one block per model with its own warm-up.

A random order (not a rotation) keeps a position effect ("first after a switch", a cache a model
left warm for the next) from lining up with one model. Each block records its median call, its
wall time and the calling thread's CPU time: a thread that was preempted for part of a block
shows a CPU/wall ratio below 1, and such blocks are flagged, counted and kept (the estimate
sees them through the rounds; dropping them would bias towards quiet moments).

Every block spans about the same wall time: the slowest model's block (or ``block_seconds``). A
model whose call is ten times faster makes ten times as many calls (up to :data:`MAX_STRETCH`
times ``iters``), so a stall of a few milliseconds (a co-tenant, a page fault, the other
runtime's threads spinning down) moves no more than a few of its calls and leaves the median
where it was; with equal counts, a sub-millisecond model's whole block fits inside such a stall.
Short blocks and more rounds beat long blocks: a variant's block and its baseline's are then
closer in time, and the machine's drift between them is what the within-process noise is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from src.core.threads import torch_threads
from src.measure.latency import LatencySpec, time_calls

PREEMPTED_BELOW = 0.8  # CPU/wall of the calling thread under which a block was preempted
MAX_STRETCH = 20  # a fast model's block holds at most this many times spec.iters calls


@dataclass(frozen=True)
class Block:
    """One model's timed block in one round.

    Attributes:
        model: The model's key.
        batch: Batch size.
        round: Round index (0-based).
        position: Where the model came in that round's random order.
        median_s: Median seconds per timed call.
        calls: Timed calls.
        wall_s: Wall seconds of the block (warm-up and timed calls).
        cpu_s: The calling thread's CPU seconds over the same span.
        preempted: ``cpu_s / wall_s`` below :data:`PREEMPTED_BELOW`.
    """

    model: str
    batch: int
    round: int
    position: int
    median_s: float
    calls: int
    wall_s: float
    cpu_s: float
    preempted: bool

    def as_dict(self) -> dict:
        return asdict(self)


def time_rounds(
    models: Mapping[str, nn.Module],
    make_input: Callable[[str, int], Any],
    spec: LatencySpec,
    rng: np.random.Generator,
    clock: Callable[[], float] | None = None,
    cpu_clock: Callable[[], float] = time.thread_time,
) -> list[Block]:
    """``spec.rounds`` rounds per batch size of every model, order drawn from ``rng`` each round.

    Args:
        models: Key to model (a runtime's callable behind an ``nn.Module``).
        make_input: ``make_input(key, batch)``: a model's input at a batch size (called once
            per model and batch size; models of one data set get the same object).
        spec: Batch sizes, warm-up, calls, rounds, threads, block cap (as in-run latency).
        rng: Draws each round's order.
        clock: Wall clock (a test's fake one).
        cpu_clock: The calling thread's CPU clock.
    """
    if not models:
        raise ValueError("time_rounds needs at least one model")
    clock = clock or time.perf_counter
    names = list(models)
    blocks: list[Block] = []
    with torch_threads(spec.threads):
        for batch in spec.batch_sizes:
            examples = {name: make_input(name, batch) for name in names}
            calls = block_calls(_per_call(models, examples, clock), spec)
            for r in range(spec.rounds_at(batch)):
                for position, i in enumerate(rng.permutation(len(names))):
                    name = names[i]
                    warmup, iters = calls[name]
                    wall, cpu = clock(), cpu_clock()
                    times = time_calls(models[name], examples[name], warmup, iters, clock=clock)
                    wall, cpu = clock() - wall, cpu_clock() - cpu
                    median = float(np.median(times))
                    preempted = wall > 0 and cpu / wall < PREEMPTED_BELOW
                    blocks.append(
                        Block(name, batch, r, position, median, iters, wall, cpu, preempted)
                    )
    return blocks


def _per_call(models, examples, clock) -> dict[str, float]:
    """Each model's second call in seconds, on its own input (the first one warms up)."""
    return {k: float(time_calls(m, examples[k], 1, 1, clock=clock)[0]) for k, m in models.items()}


def block_calls(per_call: Mapping[str, float], spec: LatencySpec) -> dict[str, tuple[int, int]]:
    """``{model: (warm-up, timed calls)}``: the slowest model gets ``spec.calls`` (``iters``,
    fewer where ``block_seconds`` caps it); every other model as many calls as fill the same
    span, or ``block_seconds`` where the span is longer (large batches: a 50 ms call is no
    longer at the mercy of a short stall), at least ``iters`` and at most :data:`MAX_STRETCH`
    times it. Warm-up stays the slowest model's: it primes a model, it does not sample it.
    """
    slowest = max(per_call.values())
    warmup, iters = spec.calls(slowest)
    span = slowest * iters
    if spec.block_seconds is not None:
        span = min(span, float(spec.block_seconds))
    out = {}
    for name, seconds in per_call.items():
        fill = math.ceil(span / seconds) if seconds > 0 else MAX_STRETCH * iters
        out[name] = (warmup, min(max(iters, fill), MAX_STRETCH * iters))
    return out


def log_ratios(blocks: pd.DataFrame, reference: str, candidate: str, batch: int) -> np.ndarray:
    """``log(reference / candidate)`` of the block medians, ``(processes, rounds)``, paired by
    process and round (NaN where one of the two has no block there).

    Args:
        blocks: :class:`Block` rows with a ``process`` column.
        reference: The model whose time is divided (the fp32 baseline).
        candidate: The model whose speedup it is.
        batch: Batch size.
    """
    rows = blocks[blocks["batch"] == batch]

    def medians(model: str) -> pd.DataFrame:
        mine = rows[rows["model"] == model]
        return mine.pivot_table(index="process", columns="round", values="median_s")

    ref, cand = medians(reference), medians(candidate)
    ref, cand = ref.align(cand, join="outer")
    return np.log(ref.to_numpy(float) / cand.to_numpy(float))
