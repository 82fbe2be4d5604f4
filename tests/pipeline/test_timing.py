"""The timing pass's pieces: ``pytest tests/pipeline/test_timing.py`` (end to end:
``tests/test_timing.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.core.errors import ConfigError
from src.measure.latency import LatencySpec
from src.pipeline.timing import Target, TimingSpec
from src.pipeline.timing_record import SPEEDUP, VS_FP32, comparisons, estimate, run_metrics

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
    }
    skipped = comparisons(TARGETS, ALL - {"base@onnxruntime"})  # the fp32 export did not open
    assert {(c.run_id, c.runtime, c.against) for c in skipped} == {
        (V, "eager", SPEEDUP),
        (V, "onnxruntime", SPEEDUP),
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
