"""The timing pass's pieces: ``pytest tests/pipeline/test_timing.py`` (end to end:
``tests/test_timing.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.core.errors import ConfigError
from src.measure.latency import LatencySpec
from src.pipeline.timing import Target, TimingSpec
from src.pipeline.timing_record import (
    SPEEDUP,
    VS_BEST,
    VS_FP32,
    comparisons,
    estimate,
    run_metrics,
)

B, V = "base", "var"
TARGETS = [Target(B, B, ("eager", "onnxruntime")), Target(V, B, ("eager", "onnxruntime"))]
ALL = {f"{r}@{rt}" for r in (B, V) for rt in ("eager", "onnxruntime")}


def test_each_runtime_against_fp32_eager_and_fp32_in_the_same_runtime():
    found = {(c.run_id, c.runtime, c.against, c.reference) for c in comparisons(TARGETS, ALL)}
    assert found == {
        (B, "onnxruntime", SPEEDUP, "base@eager"),
        (V, "eager", SPEEDUP, "base@eager"),
        (V, "onnxruntime", SPEEDUP, "base@eager"),
        (V, "onnxruntime", VS_FP32, "base@onnxruntime"),
        (V, "eager", VS_BEST, ""),  # the fastest of the fp32 model's runtimes, per batch
        (V, "onnxruntime", VS_BEST, ""),
    }
    best = {c.references for c in comparisons(TARGETS, ALL) if c.against == VS_BEST}
    assert best == {("base@eager", "base@onnxruntime")}
    skipped = comparisons(TARGETS, ALL - {"base@onnxruntime"})  # the fp32 export did not open
    assert {(c.run_id, c.runtime, c.against) for c in skipped} == {
        (V, "eager", SPEEDUP),
        (V, "onnxruntime", SPEEDUP),
        (V, "eager", VS_BEST),
        (V, "onnxruntime", VS_BEST),
    }


def _blocks(rng, processes=4, rounds=3):
    """Blocks where var@eager is 2x faster than base@eager at both batch sizes."""
    rows = []
    for p in range(processes):
        shift = rng.normal(0, 0.05)
        for r in range(rounds):
            for batch, base in ((1, 1e-3), (8, 4e-3)):
                for model, factor in (("base@eager", 1.0), ("var@eager", 0.5 * np.exp(shift))):
                    t = base * factor * np.exp(rng.normal(0, 0.01))
                    rows.append(
                        {"process": p, "round": r, "batch": batch, "model": model, "median_s": t}
                    )
    return pd.DataFrame(rows)


def test_estimates_become_timing_metrics_on_each_run():
    pairs = comparisons([Target(V, B, ("eager",))], {"base@eager", "var@eager"})
    table = estimate(_blocks(np.random.default_rng(0)), pairs, 0.95)
    table = table[table["against"] == SPEEDUP]
    assert list(table["batch"]) == [1, 8] and (table["processes"] == 4).all()
    assert ((table["ci_low"] < 2.0 * 1.1) & (table["ci_high"] > 2.0 / 1.1)).all()
    metrics = run_metrics(table)[V]
    for size in ("bs1", "bsN"):
        name = f"timing/eager/speedup_{size}"
        assert metrics[f"{name}_ci_low"] < metrics[name] < metrics[f"{name}_ci_high"]
        assert (
            metrics[f"timing/eager/sd_between_{size}"] > metrics[f"timing/eager/sd_within_{size}"]
        )


def test_a_pass_needs_two_processes_for_an_interval():
    spec = LatencySpec(batch_sizes=(1,))
    with pytest.raises(ConfigError, match="processes=1"):
        TimingSpec(spec, processes=1)
    with pytest.raises(ConfigError, match="level"):
        TimingSpec(spec, processes=3, level=95)


def test_the_fp32_model_in_its_fastest_runtime_is_chosen_per_batch():
    """fp32 is faster in ONNX Runtime at batch 1 (0.5x eager's time) and in eager at batch 8;
    the variant (eager) is 2x fp32 eager: 1x the best fp32 at batch 1, 2x at batch 8."""
    rows, rng = [], np.random.default_rng(1)
    times = {"base@eager": (1.0, 4.0), "base@onnxruntime": (0.5, 6.0), "var@eager": (0.5, 2.0)}
    for p in range(4):
        for r in range(3):
            for model, (t1, t8) in times.items():
                for batch, t in ((1, t1), (8, t8)):
                    t = t * 1e-3 * np.exp(rng.normal(0, 0.01))
                    rows.append(
                        {"process": p, "round": r, "batch": batch, "model": model, "median_s": t}
                    )
    pairs = [c for c in comparisons([Target(V, B, ("eager",))], set(times)) if c.against == VS_BEST]
    table = estimate(pd.DataFrame(rows), pairs, 0.95).set_index("batch")
    assert (
        table.loc[1, "reference"] == "base@onnxruntime"
        and table.loc[8, "reference"] == "base@eager"
    )
    assert table.loc[1, "speedup"] == pytest.approx(1.0, rel=0.05)
    assert table.loc[8, "speedup"] == pytest.approx(2.0, rel=0.05)
    assert run_metrics(table.reset_index())[V]["timing/eager/vs_fp32_best_bsN"] == pytest.approx(
        2.0, rel=0.05
    )
