"""The board's runtime rows: ``python -m pytest tests/board/test_runtimes.py``."""

import numpy as np
import pandas as pd

from src.board.runtimes import FAILED_PARITY, runtime_display, runtime_names, runtime_rows

M = "metrics."


def _runs():
    """A baseline and two int8 variants, each timed in eager and ONNX Runtime."""
    base = {
        "run_id": "b",
        M + "latency/ms_p50_bs1": 10.0,
        M + "latency/eager/ms_p50_bs1": 10.0,
        M + "latency/onnxruntime/ms_p50_bs1": 4.0,
        M + "latency/onnxruntime/speedup_bs1": 2.5,
        M + "latency/onnxruntime/speedup_bs1_ci_low": 2.4,
        M + "latency/onnxruntime/speedup_bs1_ci_high": 2.6,
        M + "runtime/onnxruntime/parity": 1.0,
        M + "runtime/onnxruntime/test/auroc": 0.9,
    }
    good = {
        "run_id": "d",
        M + "latency/eager/speedup_bs1": 1.5,
        M + "latency/eager/speedup_bs1_ci_low": 1.4,
        M + "latency/eager/speedup_bs1_ci_high": 1.6,
        M + "latency/onnxruntime/speedup_bs1": 3.0,
        M + "latency/onnxruntime/speedup_bs1_ci_low": 2.9,
        M + "latency/onnxruntime/speedup_bs1_ci_high": 3.1,
        M + "latency/onnxruntime/vs_fp32_bs1": 1.2,
        M + "latency/onnxruntime/vs_fp32_bs1_ci_low": 1.1,
        M + "latency/onnxruntime/vs_fp32_bs1_ci_high": 1.3,
        # A pass's figure: against fp32 in its fastest runtime, slower at 1, faster at N.
        M + "latency/onnxruntime/vs_fp32_best_bs1": 0.8,
        M + "latency/onnxruntime/vs_fp32_best_bs1_ci_low": 0.7,
        M + "latency/onnxruntime/vs_fp32_best_bs1_ci_high": 0.9,
        M + "latency/onnxruntime/vs_fp32_best_bsN": 1.9,
        M + "latency/onnxruntime/vs_fp32_best_bsN_ci_low": 1.8,
        M + "latency/onnxruntime/vs_fp32_best_bsN_ci_high": 2.0,
        M + "runtime/onnxruntime/parity": 1.0,
        M + "runtime/onnxruntime/test/auroc": 0.9,
        M + "runtime/onnxruntime/int8_ops": 12.0,
        # Its own paired interval against the baseline, within the margin 0.02:
        M + "runtime/onnxruntime/delta/auroc_ci_low": -0.01,
        M + "runtime/onnxruntime/delta/auroc_ci_high": 0.01,
    }
    broken = {
        "run_id": "s",
        M + "latency/eager/speedup_bs1": 0.5,
        M + "latency/onnxruntime/speedup_bs1": 9.0,
        M + "runtime/onnxruntime/parity": 0.0,
        M + "runtime/onnxruntime/test/auroc": 0.6,
    }
    half = {
        "run_id": "h",
        M + "latency/eager/speedup_bs1": 0.9,
        "tags.runtime.onnxruntime.skipped": "half-precision weights",
    }
    per_run = pd.DataFrame([base, good, broken, half])
    per_run["method"] = ["baseline", "dynamic", "static", "half"]
    rows = pd.DataFrame(
        {
            "data": "battery",
            "model": "dyad",
            "method": ["baseline", "dynamic", "static", "half"],
            "variant": ["baseline", "dynamic", "static", "fp16"],
            "run_ids": ["b", "d", "s", "h"],
            "verdict": ["baseline", "inconclusive", "non-inferior", "inconclusive"],
            "test/auroc:mean": [0.9, 0.9, 0.9, 0.9],
        }
    )
    return rows, per_run


def test_every_variant_gets_a_row_per_runtime_with_its_parity_and_best_runtime():
    rows, per_run = _runs()
    assert runtime_names(per_run) == ["eager", "onnxruntime"]
    table = runtime_rows(rows, per_run, "test/auroc", margin=0.02)
    table = table.set_index(["variant", "runtime"])
    assert len(table) == 8
    assert table.loc[("baseline", "eager"), "speedup bs1"] == 1.0
    assert table.loc[("baseline", "onnxruntime"), "best"] == "*"
    assert table.loc[("dynamic", "eager"), "verdict"] == "inconclusive"
    dyn = table.loc[("dynamic", "onnxruntime")]  # judged on its own interval
    assert dyn["verdict"] == "non-inferior" and dyn["speed"] == "faster" and dyn["best"] == "*"
    assert dyn["vs fp32 same runtime"] == "faster (1.2x)" and dyn["int8 ops"] == 12
    assert dyn["vs fp32 best runtime"] == "bs1 slower (0.8x); bsN faster (1.9x)"
    assert table.loc[("dynamic", "eager"), "vs fp32 best runtime"] == "—"  # no pass measured it
    assert table.loc[("baseline", "onnxruntime"), "vs fp32 best runtime"] == ""
    # 9x faster, but its answer changed: no verdict, never the best runtime.
    static = table.loc[("static", "onnxruntime")]
    assert static["verdict"] == FAILED_PARITY and static["best"] == ""
    assert "moved -0.3" in static["note"]
    assert table.loc[("static", "eager"), "best"] == "*"
    fp16 = table.loc[("fp16", "onnxruntime")]
    assert fp16["verdict"] == "not run" and fp16["note"] == "half-precision weights"
    assert np.isnan(fp16["speedup bs1"])


def test_display_filters_one_runtime_and_formats():
    rows, per_run = _runs()
    shown = runtime_display(runtime_rows(rows, per_run, "test/auroc"), "onnxruntime")
    assert set(shown["runtime"]) == {"onnxruntime"}
    assert shown.set_index("variant").loc["dynamic", "speedup bs1"] == "3x"


def test_the_runtime_plot_is_written(tmp_path):
    from src.board.plot import save_runtime_plot

    rows, per_run = _runs()
    path = save_runtime_plot(runtime_rows(rows, per_run, "test/auroc"), tmp_path / "r.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_the_file_column_is_each_runtimes_own_file():
    rows, per_run = _runs()
    per_run[M + "size/onnx_mb"] = [1.0, 0.5, np.nan, np.nan]  # runs logged before file_mb
    per_run[M + "latency/compile/ms_p50_bs1"] = [5.0, 2.5, 2.5, np.nan]  # ships no file
    per_run[M + "latency/compile/speedup_bs1"] = [2.0, 4.0, 4.0, np.nan]
    per_run[M + "runtime/compile/parity"] = [1.0, 1.0, 1.0, np.nan]
    per_run[M + "runtime/onnxruntime/file_mb"] = [np.nan, np.nan, 0.25, np.nan]
    table = runtime_rows(rows, per_run, "test/auroc").set_index(["variant", "runtime"])
    assert table.loc[("dynamic", "onnxruntime"), "file MB"] == 0.5  # the legacy metric
    assert table.loc[("static", "onnxruntime"), "file MB"] == 0.25  # its own, where logged
    assert np.isnan(table.loc[("dynamic", "compile"), "file MB"])  # never another's file
    assert np.isnan(table.loc[("dynamic", "eager"), "file MB"])
