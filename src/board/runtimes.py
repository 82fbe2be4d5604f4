"""The runtime axis of the board: one row per variant and deployment runtime.

Every run timed its variant in each runtime side by side with the fp32 model in eager (the one
reference: ``latency/<runtime>/speedup_*``) and with the fp32 model in that same runtime
(``latency/<runtime>/vs_fp32_*``), and recomputed the task metric from the runtime's own outputs
(``runtime/<runtime>/...``). A row keeps the variant's paired verdict only where the runtime gave
the same answer (parity); a runtime that failed parity, or skipped the variant, says so instead.
Per variant, the best runtime is the fastest one at batch 1 that kept parity, and the honest
question is answered beside it: is the variant faster than the fp32 model in that same runtime?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.board.verdict import speed_verdict, verdict_of
from src.core import schema

EAGER = "eager"
FAILED_PARITY = "failed parity"
RUNTIME_COLUMNS = ("data", "model", "variant", "runtime", "form", "verdict", "speedup bs1",
                   "speedup bsN", "speed", "vs fp32 same runtime", "parity Δ", "max |diff|",
                   "int8 ops", "file MB", "best", "note")  # fmt: skip


def runtime_names(per_run: pd.DataFrame) -> list[str]:
    """The runtimes the runs measured: eager first, then those with ``latency/<name>/`` figures."""
    parts = [c.split("/") for c in per_run.columns if c.startswith("metrics.latency/")]
    found = {p[1] for p in parts if len(p) == 3 and p[2] == "ms_p50_bs1"}
    return [EAGER] + sorted(found - {EAGER}) if found else []


def runtime_rows(
    rows: pd.DataFrame,
    per_run: pd.DataFrame,
    metric: str,
    margin: float | None = None,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Long table: every board row x every runtime its runs measured (or skipped).

    A runtime that kept parity and logged its own paired interval against the baseline
    (``runtime/<name>/delta/<metric>_ci_low``/``_high``) is judged on it with ``margin``: over
    several runs, on the widest of their intervals (conservative: the board pools the eager
    rows' units, the runtime's are not logged); otherwise it inherits the eager verdict."""
    names = runtime_names(per_run)
    if not names:
        return pd.DataFrame(columns=RUNTIME_COLUMNS)
    by_id = per_run.set_index("run_id")
    out = [
        _row(row, by_id.loc[row["run_ids"].split()], name, metric, (margin, higher_is_better))
        for _, row in rows.iterrows()
        for name in names
    ]
    table = pd.DataFrame(out)
    return _mark_best(table).reindex(columns=RUNTIME_COLUMNS)


def _row(row: pd.Series, runs: pd.DataFrame, name: str, metric: str, judge: tuple) -> dict:
    speedup = schema.runtime_speedup(name)
    is_base = row["method"] == schema.BASELINE
    base = {"data": row["data"], "model": row["model"], "variant": row["variant"], "runtime": name}
    skipped = _first(runs, f"tags.{schema.runtime_tag(name, 'skipped')}")
    # The baseline in eager is the reference itself: 1 by definition, never measured.
    reference = 1.0 if is_base and name == EAGER else np.nan
    bs1 = _mean(runs, f"{speedup}_bs1", reference)
    if skipped or np.isnan(bs1):
        return {**base, "verdict": "not run", "note": skipped or "not measured in this runtime"}
    parity_ok = name == EAGER or _mean(runs, schema.runtime_check(name, "parity"), 0.0) == 1.0
    moved = _mean(runs, schema.runtime_check(name, metric), np.nan) - row.get(
        f"{metric}:mean", np.nan
    )
    return {
        **base,
        "form": _first(runs, f"tags.{schema.runtime_tag(name, 'form')}") or "PyTorch eager",
        "verdict": _verdict(row, runs, name, metric, judge) if parity_ok else FAILED_PARITY,
        "speedup bs1": bs1,
        "speedup bsN": _mean(runs, f"{speedup}_bsN", reference),
        "speed": "" if is_base and name == EAGER else speed_verdict(runs, f"{speedup}_bs1"),
        "vs fp32 same runtime": _vs_fp32(runs, name, is_base),
        "parity Δ": np.nan if name == EAGER else moved,
        "max |diff|": _mean(runs, schema.runtime_check(name, "max_abs_diff"), np.nan),
        "int8 ops": _mean(runs, schema.runtime_check(name, "int8_ops"), np.nan),
        "file MB": _mean(runs, schema.SIZE_ONNX_MB, np.nan) if name != EAGER else np.nan,
        "note": "" if parity_ok else f"{metric} moved {moved:+.3g} in this runtime",
    }


def _verdict(row: pd.Series, runs: pd.DataFrame, name: str, metric: str, judge: tuple) -> str:
    """The runtime's own verdict from its widest logged interval, else the eager row's."""
    delta = schema.runtime_check(name, schema.delta_of(metric))
    low, high = (runs.get(f"metrics.{delta}_ci_{end}") for end in ("low", "high"))
    if name == EAGER or low is None or high is None or low.isna().any() or high.isna().any():
        return row.get("verdict", "")
    interval = {"method": row["method"], "delta:ci_low": low.min(), "delta:ci_high": high.max()}
    return verdict_of(interval, *judge)


def _vs_fp32(runs: pd.DataFrame, name: str, is_base: bool) -> str:
    """``faster``/``same``/``slower`` than the fp32 model in this runtime, with the ratio."""
    if is_base:
        return ""
    key = f"{schema.runtime_vs_fp32(name)}_bs1"
    ratio = _mean(runs, key, np.nan)
    if np.isnan(ratio):
        return "—"
    return f"{speed_verdict(runs, key)} ({ratio:.2g}x)"


def _mark_best(table: pd.DataFrame) -> pd.DataFrame:
    """``best`` = ``*`` on each variant's fastest runtime at bs1 among those that kept parity."""
    table = table.copy()
    table["best"] = ""
    usable = table[(table["verdict"] != FAILED_PARITY) & table["speedup bs1"].notna()]
    if usable.empty:
        return table
    best = usable.groupby(["data", "model", "variant"], sort=False)["speedup bs1"].idxmax()
    table.loc[best.to_numpy(), "best"] = "*"
    return table


def _mean(runs: pd.DataFrame, key: str, default: float) -> float:
    column = f"metrics.{key}"
    if column not in runs or runs[column].isna().all():
        return default
    return float(runs[column].mean())


def _first(runs: pd.DataFrame, column: str) -> str:
    if column not in runs:
        return ""
    values = runs[column].dropna()
    return str(values.iloc[0]) if len(values) else ""


def runtime_display(table: pd.DataFrame, runtime: str | None = None) -> pd.DataFrame:
    """The runtime rows formatted for reading (``2.4x``, ``+0.000``), optionally one runtime's."""
    shown = table if runtime is None else table[table["runtime"] == runtime]
    shown = shown.copy()
    for column in ("speedup bs1", "speedup bsN"):
        shown[column] = [f"{v:.3g}x" if pd.notna(v) else "–" for v in shown[column]]
    shown["parity Δ"] = [f"{v:+.3f}" if pd.notna(v) else "" for v in shown["parity Δ"]]
    shown["max |diff|"] = [f"{v:.1e}" if pd.notna(v) else "" for v in shown["max |diff|"]]
    shown["int8 ops"] = [f"{v:.0f}" if pd.notna(v) else "" for v in shown["int8 ops"]]
    shown["file MB"] = [f"{v:.3g}" if pd.notna(v) else "" for v in shown["file MB"]]
    return shown.fillna("")
