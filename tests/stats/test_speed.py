"""Speedups over fresh processes: ``pytest tests/stats/test_speed.py``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from torch import nn

from src.measure.latency import LatencySpec, speedup_intervals, time_interleaved
from src.measure.rounds import time_rounds
from src.pipeline.timing_record import SPEEDUP, Comparison, estimate
from src.stats.delong import t_quantile
from src.stats.speed import processes_for, speedup_over_processes


def test_estimate_is_the_geometric_mean_over_processes_with_a_t_interval():
    logs = np.array([[0.1, 0.3], [0.5, 0.5], [0.0, 0.2]])
    found = speedup_over_processes(logs)
    means = np.array([0.2, 0.5, 0.1])
    assert found.speedup == pytest.approx(math.exp(means.mean()))
    half = t_quantile(0.975, 2) * means.std(ddof=1) / math.sqrt(3)
    assert (found.low, found.high) == pytest.approx(
        (math.exp(means.mean() - half), math.exp(means.mean() + half))
    )
    assert (found.processes, found.rounds) == (3, 2)
    # one-way ANOVA: within = mean squared deviation from each process's mean (df 3)
    assert found.sigma_w2 == pytest.approx((0.01 + 0.01 + 0 + 0 + 0.01 + 0.01) / 3)


def test_a_process_that_died_counts_with_the_rounds_it_gave():
    logs = np.array([[0.2, np.nan], [0.4, 0.4], [np.nan, np.nan]])
    found = speedup_over_processes(logs)
    assert found.processes == 2 and found.speedup == pytest.approx(math.exp(0.3))
    single = speedup_over_processes(np.array([[0.1, 0.2]]))
    assert math.isnan(single.low) and math.isnan(single.high)
    with pytest.raises(ValueError, match="no process"):
        speedup_over_processes(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="processes, rounds"):
        speedup_over_processes(np.zeros(3))


def test_processes_for_a_ten_percent_interval():
    # between-process SD 0.1, no within noise: t(P-1) * 0.1 / sqrt(P) <= log(1.1)
    p = processes_for(0.01, 0.0, rounds=3)
    assert t_quantile(0.975, p - 1) * 0.1 / math.sqrt(p) <= math.log(1.1)
    assert t_quantile(0.975, p - 2) * 0.1 / math.sqrt(p - 1) > math.log(1.1)
    assert processes_for(0.0, 0.0, 3) == 2
    assert processes_for(0.01, 0.09, rounds=9) > p  # within noise adds 0.09 / 9 per process


class FakeClock:
    """Seconds that pass only when a fake model is called."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel(nn.Module):
    """Takes ``seconds * exp(effect + noise)`` of fake time per call."""

    def __init__(self, clock: FakeClock, seconds: float, effect: float, noise: float, rng):
        super().__init__()
        self.clock, self.seconds, self.effect, self.noise, self.rng = (
            clock, seconds, effect, noise, rng,
        )  # fmt: skip

    def forward(self, x):
        self.clock.now += self.seconds * math.exp(self.effect + self.rng.normal(0, self.noise))
        return x


TRUE = 1.6  # true speedup of the candidate
SPEC = LatencySpec(batch_sizes=(1,), warmup=1, iters=10, threads=None, rounds=3, block_seconds=None)


def _process(rng, sd_between: float, noise: float):
    """One fresh process: its own draw of the between-process effect on the candidate."""
    clock = FakeClock()
    effect = rng.normal(0, sd_between)
    models = {
        "base": FakeModel(clock, 1e-3, 0.0, noise, rng),
        "cand": FakeModel(clock, 1e-3 / TRUE, effect, noise, rng),
    }
    return clock, models


def _covers(low: float, high: float) -> bool:
    return low <= TRUE <= high


def _experiment(rng, sd_between: float, noise: float, processes: int) -> tuple[bool, bool]:
    """(the pass covers, today's one-process interval covers) in one simulated experiment."""
    rows = []
    for p in range(processes):
        clock, models = _process(rng, sd_between, noise)
        blocks = time_rounds(models, lambda k, b: 0, SPEC, rng, clock=clock, cpu_clock=clock)
        rows += [{"process": p, **b.as_dict()} for b in blocks]
    pair = Comparison("r", "eager", SPEEDUP, "cand", "base")
    row = estimate(pd.DataFrame(rows), [pair], 0.95).iloc[0]
    clock, models = _process(rng, sd_between, noise)
    timings = time_interleaved(models, lambda b: 0, SPEC, clock=clock)
    today = speedup_intervals(timings, "base", "cand", n_boot=200, seed=int(rng.integers(1e9)))
    return _covers(row.ci_low, row.ci_high), _covers(
        today["latency/speedup_bs1_ci_low"], today["latency/speedup_bs1_ci_high"]
    )


@pytest.mark.slow
def test_the_pass_covers_where_one_process_cannot():
    """Between-process SD 0.2 on the log speedup: over 400 simulated experiments the pass's
    95 % interval (5 processes x 3 rounds) covers the true speedup 92-98 % of the time, today's
    one-process interval under 30 %; with no between-process effect both cover."""
    rng = np.random.default_rng(0)
    hits = np.array([_experiment(rng, 0.2, 0.1, 5) for _ in range(400)])
    print(f"\nSD 0.2: pass covers {hits[:, 0].mean():.3f}, one process {hits[:, 1].mean():.3f}")
    assert 0.92 <= hits[:, 0].mean() <= 0.98
    assert hits[:, 1].mean() < 0.30
    calm = np.array([_experiment(rng, 0.0, 0.1, 5) for _ in range(400)])
    print(f"SD 0: pass covers {calm[:, 0].mean():.3f}, one process {calm[:, 1].mean():.3f}")
    assert 0.92 <= calm[:, 0].mean() <= 0.98 and calm[:, 1].mean() >= 0.90
