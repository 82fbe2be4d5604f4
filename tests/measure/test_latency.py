"""Comparative latency and environment tags: ``python -m pytest tests/measure/test_latency.py``.

Only relative timings are asserted: a training job may share the CPU.
"""

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
    measurement_tags,
    speedups,
    time_calls,
)

# Calls stay around a millisecond on purpose: with a busy CPU, calls longer than a scheduler
# slice get preempted mid-call and their p50 stops scaling with the work done.
FAST = LatencySpec(batch_sizes=(1, 2), warmup=2, iters=10, threads=1, rounds=3)


class Matmul(nn.Module):
    """(B, 128, 256) @ (256, 256): a fraction of a millisecond per sample on one thread."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(256, 256) / 16)

    def forward(self, x):
        return torch.tanh(x @ self.weight)


def make_input(batch: int) -> torch.Tensor:
    return torch.randn(batch, 128, 256)


@pytest.fixture(scope="module")
def results():
    torch.manual_seed(0)
    step = Matmul()
    models = {"light": nn.Sequential(step), "heavy": nn.Sequential(step, step)}
    return compare_latency(models, make_input, FAST)


def test_every_key_is_present_and_positive(results):
    expected = {
        "latency/ms_p50_bs1",
        "latency/ms_p90_bs1",
        "latency/ms_p50_bs2",
        "latency/ms_p90_bs2",
        "throughput/samples_s_bs2",
    }
    for metrics in results.values():
        assert set(metrics) == expected
        assert all(value > 0 for value in metrics.values())


def test_p90_is_at_least_p50_and_throughput_follows_p50(results):
    for metrics in results.values():
        for batch in (1, 2):
            assert metrics[f"latency/ms_p90_bs{batch}"] >= metrics[f"latency/ms_p50_bs{batch}"]
        expected = 2 / (metrics["latency/ms_p50_bs2"] / 1e3)
        assert metrics["throughput/samples_s_bs2"] == pytest.approx(expected)


def test_twice_the_work_is_slower_as_candidate(results):
    ratio = speedups(results["light"], results["heavy"])
    assert set(ratio) == {"latency/speedup_bs1", "latency/speedup_bsN"}
    assert ratio["latency/speedup_bs1"] < 0.9
    assert ratio["latency/speedup_bsN"] < 0.9


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


def test_tuple_inputs_are_passed_positionally():
    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    spec = LatencySpec(batch_sizes=(1, 2), warmup=0, iters=2, rounds=1)
    out = compare_latency({"add": Add()}, lambda b: (torch.ones(b, 3), torch.ones(b, 3)), spec)
    assert "throughput/samples_s_bs2" in out["add"]


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
    assert measurement_tags(LatencySpec())["latency.threads"] == str(torch.get_num_threads())
    assert set(isa_flags()) <= set(environment.ISA_FLAGS)


def test_unreadable_cpuinfo_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(environment, "CPUINFO", tmp_path / "missing")
    assert isa_flags() == []
    assert cpu_model() == platform.processor()
    assert measurement_tags(FAST)["cpu_isa"] == ""


def test_speedup_intervals_bracket_the_ratio_of_medians():
    from src.measure.latency import speedup_intervals

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
    assert LatencySpec(iters=20).calls(30.0) == (5, 20)  # no cap: always iters


def test_capped_blocks_time_every_model_alike():
    from src.measure.latency import time_interleaved

    slow = LatencySpec(batch_sizes=(1, 64), warmup=2, iters=12, threads=1, rounds=2,
                       block_seconds=1e-6)  # fmt: skip
    step = Matmul()
    timings = time_interleaved({"a": step, "b": nn.Sequential(step, step)}, make_input, slow)
    assert {b: {n: t.shape for n, t in m.items()} for b, m in timings.items()} == {
        1: {"a": (2, 5), "b": (2, 5)},
        64: {"a": (2, 5), "b": (2, 5)},
    }
