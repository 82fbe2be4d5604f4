"""Comparative latency and environment tags: ``python -m pytest tests/measure/test_latency.py``.

Timing arithmetic is checked on a fake clock (``src.measure.latency`` reads ``time.perf_counter``
only; the fixture swaps its ``time`` for one that moves when a model works), so every figure is
exact and nothing depends on how busy the CPU is. Real timings are only checked to exist.
"""

import dataclasses
import math
import platform

import numpy as np
import pytest
import torch
from torch import nn

from src.measure import (
    LatencySpec,
    compare_latency,
    cpu_model,
    environment,
    isa_flags,
    latency,
    measurement_tags,
    speedups,
    time_calls,
)
from src.measure.latency import speedup_intervals, summarise, time_interleaved

FAST = LatencySpec(batch_sizes=(1, 2), warmup=2, iters=10, threads=1, rounds=3)
SECONDS = 1e-3  # fake seconds per sample of the light model
JITTER = 0.2  # a call takes 1 to 1 + JITTER times its work: spread for the percentiles


class FakeClock:
    """Stands in for the ``time`` module: ``perf_counter`` moves only when a model works."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Work(nn.Module):
    """Advances ``clock`` by ``seconds`` per sample, times a jitter that follows the model's own
    call count (every model sees the same sequence, so ``2x`` work is exactly twice the time)."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds, self.calls = clock, seconds, 0

    def forward(self, x, *more):
        jitter = 1 + JITTER * ((self.calls * 0.6180339887) % 1)  # evenly spread, deterministic
        self.calls += 1
        self.clock.now += self.seconds * x.shape[0] * jitter
        return x


def small_input(batch: int) -> torch.Tensor:
    return torch.zeros(batch, 1)


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(latency, "time", fake)
    return fake


@pytest.fixture
def models(clock) -> dict[str, nn.Module]:
    return {"light": Work(clock, SECONDS), "heavy": Work(clock, 2 * SECONDS)}


@pytest.fixture
def results(models):
    return compare_latency(models, small_input, FAST)


def test_every_key_is_present_finite_and_positive(results):
    expected = {
        "latency/ms_p50_bs1",
        "latency/ms_p90_bs1",
        "latency/ms_p50_bs2",
        "latency/ms_p90_bs2",
        "throughput/samples_s_bs2",
    }
    assert set(results) == {"light", "heavy"}
    for metrics in results.values():
        assert set(metrics) == expected
        assert all(math.isfinite(value) and value > 0 for value in metrics.values())


def test_p90_is_at_least_p50_and_throughput_follows_p50(results):
    for metrics in results.values():
        for batch in (1, 2):
            assert metrics[f"latency/ms_p90_bs{batch}"] >= metrics[f"latency/ms_p50_bs{batch}"]
        expected = 2 / (metrics["latency/ms_p50_bs2"] / 1e3)
        assert metrics["throughput/samples_s_bs2"] == pytest.approx(expected)


def test_milliseconds_are_the_work_done(results):
    for batch in (1, 2):
        light, heavy = (results[m][f"latency/ms_p50_bs{batch}"] for m in ("light", "heavy"))
        assert heavy == pytest.approx(2 * light, rel=1e-9)
        # Every call took batch x 1 ms, stretched by at most the jitter.
        assert batch * SECONDS * 1e3 <= light <= batch * SECONDS * 1e3 * (1 + JITTER)


def test_twice_the_work_is_half_the_speed(results):
    ratio = speedups(results["light"], results["heavy"])
    assert ratio == pytest.approx({"latency/speedup_bs1": 0.5, "latency/speedup_bsN": 0.5})
    back = speedups(results["heavy"], results["light"])
    assert back == pytest.approx({"latency/speedup_bs1": 2.0, "latency/speedup_bsN": 2.0})


def test_speedup_intervals_contain_the_point_estimate(models):
    timings = time_interleaved(models, small_input, FAST)
    assert {b: {n: t.shape for n, t in m.items()} for b, m in timings.items()} == {
        b: {"light": (3, 10), "heavy": (3, 10)} for b in (1, 2)
    }
    point = speedups(*(summarise(timings, ["heavy", "light"])[m] for m in ("heavy", "light")))
    interval = speedup_intervals(timings, "heavy", "light")
    for key in ("latency/speedup_bs1", "latency/speedup_bsN"):
        low, high = interval[f"{key}_ci_low"], interval[f"{key}_ci_high"]
        assert low <= point[key] <= high
        # Each resampled median lies within the jitter, so the ratio does too.
        assert 2 / (1 + JITTER) <= low and high <= 2 * (1 + JITTER)


def test_in_run_latency_times_the_large_batch_its_own_rounds(models):
    spec = dataclasses.replace(FAST, large_batch_rounds=1)
    timings = time_interleaved(models, small_input, spec)
    assert {b: timings[b]["light"].shape for b in (1, 2)} == {1: (3, 10), 2: (1, 10)}
    interval = speedup_intervals(timings, "heavy", "light")  # one round: calls resampled
    assert interval["latency/speedup_bsN_ci_low"] <= interval["latency/speedup_bsN_ci_high"]


def test_speedups_refuse_entries_with_different_largest_batch(results):
    other = {"latency/ms_p50_bs4": 1.0, "throughput/samples_s_bs4": 4000.0}
    with pytest.raises(ValueError, match="same LatencySpec"):
        speedups(results["light"], other)


def test_thread_count_is_restored_even_when_a_model_fails():
    before = torch.get_num_threads()
    spec = LatencySpec(
        batch_sizes=(1,), warmup=0, iters=2, rounds=1, threads=2 if before == 1 else 1
    )
    compare_latency({"m": nn.Linear(4, 4)}, lambda b: torch.randn(b, 4), spec)
    assert torch.get_num_threads() == before

    def broken(x):
        raise RuntimeError("boom")

    failing = nn.Linear(4, 4)
    failing.forward = broken
    with pytest.raises(RuntimeError, match="boom"):
        compare_latency({"m": failing}, lambda b: torch.randn(b, 4), spec)
    assert torch.get_num_threads() == before


def test_training_flags_are_restored_per_module():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    model[1].eval()  # a deliberately mixed state must survive
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    times = time_calls(model, torch.randn(2, 4), warmup=1, iters=3)
    assert times.shape == (3,) and np.all(times > 0)
    assert seen == [False] * 4
    assert model.training and model[0].training and not model[1].training


def test_tuple_inputs_are_passed_positionally(clock):
    seen = []

    class Add(Work):
        def forward(self, a, b):
            seen.append((a.shape, b.shape))
            return super().forward(a) + b

    spec = LatencySpec(batch_sizes=(1, 2), warmup=1, iters=2, rounds=2, block_seconds=None)
    out = compare_latency(
        {"add": Add(clock, SECONDS)}, lambda b: (torch.ones(b, 3), torch.ones(b, 3)), spec
    )
    calls = spec.rounds * (spec.warmup + spec.iters)  # per batch size, no cap on the blocks
    assert seen == [((b, 3), (b, 3)) for b in (1, 2) for _ in range(calls)]
    assert out["add"]["throughput/samples_s_bs2"] == pytest.approx(
        2 / (out["add"]["latency/ms_p50_bs2"] / 1e3)
    )


def test_inference_mode_is_active_during_timing():
    flags = []

    class Probe(nn.Module):
        def forward(self, x):
            flags.append(torch.is_inference_mode_enabled())
            return x

    time_calls(Probe(), torch.zeros(1), warmup=1, iters=1)
    assert flags == [True, True]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"batch_sizes": (0,)}, "batch_sizes"),
        ({"batch_sizes": ()}, "batch_sizes"),
        ({"iters": 0}, "iters"),
        ({"rounds": 0}, "rounds"),
        ({"warmup": -1}, "warmup"),
        ({"threads": 0}, "threads"),
        ({"iters": 2.5}, "iters"),
        ({"block_seconds": 0}, "block_seconds"),
    ],
)
def test_invalid_spec_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LatencySpec(**kwargs)


def test_spec_accepts_lists_as_batch_sizes():
    assert LatencySpec(batch_sizes=[1, 16]).batch_sizes == (1, 16)


def test_measurement_tags_are_complete_strings():
    tags = measurement_tags(FAST)
    assert set(tags) == {
        "latency.threads",
        "latency.batch_sizes",
        "latency.warmup",
        "latency.iters",
        "latency.rounds",
        "latency.block_seconds",
        "torch_version",
        "cpu_model",
        "cpu_isa",
        "quantized_engine",
    }
    assert all(isinstance(value, str) for value in tags.values())
    assert tags["latency.batch_sizes"] == "1,2" and tags["latency.threads"] == "1"
    fewer = dataclasses.replace(FAST, large_batch_rounds=1)
    assert (tags["latency.rounds"], measurement_tags(fewer)["latency.rounds"]) == (
        "3",
        "3 (1 at bs2)",
    )
    assert measurement_tags(LatencySpec(threads=None))["latency.threads"] == str(
        torch.get_num_threads()
    )
    assert set(isa_flags()) <= set(environment.ISA_FLAGS)


def test_unreadable_cpuinfo_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(environment, "CPUINFO", tmp_path / "missing")
    assert isa_flags() == []
    assert cpu_model() == platform.processor()
    assert measurement_tags(FAST)["cpu_isa"] == ""


def test_speedup_intervals_bracket_the_ratio_of_medians():
    rng = np.random.default_rng(0)
    base = 2.0 + rng.exponential(0.05, size=(3, 40))
    fast = 1.0 + rng.exponential(0.05, size=(3, 40))
    timings = {1: {"b": base, "m": fast}, 8: {"b": base * 4, "m": base * 4}}
    out = speedup_intervals(timings, "b", "m")
    ratio = np.median(base) / np.median(fast)
    assert out["latency/speedup_bs1_ci_low"] < ratio < out["latency/speedup_bs1_ci_high"]
    assert 1.8 < out["latency/speedup_bs1_ci_low"] and out["latency/speedup_bs1_ci_high"] < 2.2
    assert out["latency/speedup_bsN_ci_low"] <= 1.0 <= out["latency/speedup_bsN_ci_high"]


def test_block_seconds_shortens_only_blocks_of_slow_calls():
    spec = LatencySpec(warmup=5, iters=20, block_seconds=1.0)
    assert spec.calls(0.012) == (5, 20)  # 0.24 s per block: untouched
    assert spec.calls(0.1) == (2, 10)  # 10 calls fill the second, warm-up scaled alike
    assert spec.calls(0.29) == (1, 5) and spec.calls(30.0) == (1, 5)  # never below 5 timed
    assert LatencySpec(warmup=5, iters=20, block_seconds=None).calls(30.0) == (5, 20)  # no cap


def test_capped_blocks_time_every_model_alike(models):
    slow = LatencySpec(
        batch_sizes=(1, 64), warmup=2, iters=12, threads=1, rounds=2, block_seconds=1e-6
    )
    timings = time_interleaved(models, small_input, slow)
    assert {b: {n: t.shape for n, t in m.items()} for b, m in timings.items()} == {
        1: {"light": (2, 5), "heavy": (2, 5)},
        64: {"light": (2, 5), "heavy": (2, 5)},
    }
