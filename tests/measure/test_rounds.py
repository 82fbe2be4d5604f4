"""Rounds of a timing process: ``pytest tests/measure/test_rounds.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from torch import nn

from src.measure.latency import LatencySpec
from src.measure.rounds import (
    MAX_STRETCH,
    PREEMPTED_BELOW,
    block_calls,
    log_ratios,
    time_rounds,
)

SPEC = LatencySpec(
    batch_sizes=(1, 4), warmup=1, iters=3, threads=None, rounds=6, block_seconds=None
)


class Tick(nn.Module):
    """Advances a shared fake clock by ``seconds`` a call, and records who ran."""

    def __init__(self, name, clock, seconds, log):
        super().__init__()
        self.name, self.clock, self.seconds, self.log = name, clock, seconds, log

    def forward(self, x):
        self.clock[0] += self.seconds
        self.log.append(self.name)
        return x


def test_every_model_once_per_round_in_fresh_random_orders():
    clock, log = [0.0], []
    models = {n: Tick(n, clock, s, log) for n, s in (("a", 1.0), ("b", 0.5), ("c", 0.25))}
    inputs = []
    blocks = time_rounds(
        models,
        lambda key, b: inputs.append((key, b)) or b,
        SPEC,
        np.random.default_rng(0),
        clock=lambda: clock[0],
        cpu_clock=lambda: clock[0],
    )
    frame = pd.DataFrame([b.as_dict() for b in blocks])
    assert len(frame) == 3 * 2 * 6 and sorted(set(inputs)) == [
        (k, b) for k in "abc" for b in (1, 4)
    ]
    per_round = frame.groupby(["batch", "round"])["model"].apply(sorted)
    assert all(models_ == ["a", "b", "c"] for models_ in per_round)
    orders = {
        tuple(g.sort_values("position")["model"]) for _, g in frame.groupby(["batch", "round"])
    }
    assert len(orders) > 1  # not one fixed rotation
    assert frame.set_index("model")["median_s"].groupby(level=0).first().to_dict() == {
        "a": 1.0, "b": 0.5, "c": 0.25,
    }  # fmt: skip
    calls = frame.groupby("model")["calls"].unique().map(list).to_dict()
    assert calls == {"a": [3], "b": [6], "c": [12]}  # every block spans a's 3 s
    assert not frame["preempted"].any()
    assert frame.loc[frame.model == "a", "wall_s"].iloc[0] == pytest.approx(4.0)  # warm-up + 3
    assert frame.loc[frame.model == "c", "wall_s"].iloc[0] == pytest.approx(3.25)  # 1 + 12 calls


def test_fast_models_fill_the_slowest_block_up_to_a_stretch_and_the_cap_still_holds():
    spec = LatencySpec(batch_sizes=(1,), warmup=2, iters=10, threads=None, block_seconds=0.5)
    calls = block_calls({"slow": 0.01, "fast": 0.001, "tiny": 1e-6}, spec)
    assert calls == {"slow": (2, 10), "fast": (2, 100), "tiny": (2, 10 * MAX_STRETCH)}
    capped = block_calls({"slow": 0.2, "fast": 0.01}, spec)  # 10 x 0.2 s > block_seconds
    assert capped == {"slow": (1, 5), "fast": (1, 50)}  # 5 calls = 1 s; fast fills 0.5 s


def test_a_block_whose_thread_lost_the_cpu_is_flagged():
    clock, log = [0.0], []
    models = {"a": Tick("a", clock, 1.0, log)}

    def cpu_clock():  # the thread ran only half of the wall time
        return clock[0] * (PREEMPTED_BELOW - 0.3)

    spec = LatencySpec(
        batch_sizes=(1,), warmup=0, iters=2, threads=None, rounds=2, block_seconds=None
    )
    blocks = time_rounds(
        models, lambda k, b: b, spec, np.random.default_rng(1), lambda: clock[0], cpu_clock
    )
    assert all(b.preempted for b in blocks)


def test_log_ratios_pair_processes_and_rounds():
    rows = [
        {"process": p, "round": r, "batch": 1, "model": m, "median_s": t}
        for p in range(2)
        for r in range(2)
        for m, t in (("base", 2.0 * (p + 1)), ("cand", 1.0 * (p + 1)))
    ]
    rows.append({"process": 2, "round": 0, "batch": 1, "model": "base", "median_s": 1.0})
    logs = log_ratios(pd.DataFrame(rows), "base", "cand", 1)
    assert logs.shape == (3, 2)
    assert np.allclose(logs[:2], np.log(2.0)) and np.isnan(logs[2]).all()


def test_larger_batches_can_take_fewer_rounds():
    clock, log = [0.0], []
    models = {n: Tick(n, clock, s, log) for n, s in (("a", 1.0), ("b", 0.5))}
    spec = LatencySpec(
        batch_sizes=(1, 4, 16), warmup=1, iters=3, threads=None, rounds=6, large_batch_rounds=2
    )
    blocks = time_rounds(
        models, lambda key, b: b, spec, np.random.default_rng(0), clock=lambda: clock[0]
    )
    rounds = pd.DataFrame([b.as_dict() for b in blocks]).groupby("batch")["round"].nunique()
    assert rounds.to_dict() == {1: 6, 4: 2, 16: 2}
    assert spec.rounds_label() == "6 (2 at bs4,16)" and SPEC.rounds_label() == "6"
    with pytest.raises(ValueError, match="large_batch_rounds"):
        LatencySpec(large_batch_rounds=0)
