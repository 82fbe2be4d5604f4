"""The runtime axis of the board: one row per variant and deployment runtime.

Every run timed its variant in each runtime side by side with the fp32 model in eager (the one
reference: ``latency/<runtime>/speedup_*``) and with the fp32 model in that same runtime
(``latency/<runtime>/vs_fp32_*``), and recomputed the task metric from the runtime's own outputs
(``runtime/<runtime>/...``). A row keeps the variant's paired verdict only where the runtime gave
the same answer (parity); a runtime that failed parity, or skipped the variant, says so instead.
Per variant, the best runtime is the fastest one at batch 1 that kept parity, and the honest
questions are answered beside it: is the variant faster than the fp32 model in that same runtime,
and than the fp32 model in the fp32 model's own fastest runtime (a timing pass's figure: does
compressing beat just switching runtime)?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.columns import RUNTIME_COLUMNS
from src.board.verdict import TableSource, cell_of, speed_verdict, verdict_of
from src.core import schema
from src.stats import paired_difference

EAGER = schema.EAGER
LEGACY_FILE_RUNTIME = "onnxruntime"  # the one runtime that shipped a file before file_mb
FAILED_PARITY = "failed parity"


def runtime_names(per_run: pd.DataFrame) -> list[str]:
    """The runtimes the runs measured: eager first, then those with ``latency/<name>/`` figures."""
    parts = [c.split("/") for c in per_run.columns if c.startswith(col.metric("latency/"))]
    found = {p[1] for p in parts if len(p) == 3 and p[2] == "ms_p50_bs1"}
    return [EAGER] + sorted(found - {EAGER}) if found else []


def runtime_rows(
    rows: pd.DataFrame,
    per_run: pd.DataFrame,
    metric: str,
    margin: float | None = None,
    higher_is_better: bool = True,
    tables: TableSource | None = None,
    statistic: str | None = None,
) -> pd.DataFrame:
    """Long table: every board row x every runtime its runs measured (or skipped).

    A runtime that kept parity is judged with ``margin`` on its own units: its runs' paired
    tables against the baseline (``tables/paired_units_<runtime>.csv``) recombined over folds and
    seeds like the eager row's (``statistic``: the paired statistic, ``auroc``); runs logged
    before those tables fall back to their own intervals (``runtime/<name>/delta/<metric>_ci_*``;
    over several runs the widest of them); otherwise it inherits the eager verdict."""
    names = runtime_names(per_run)
    if not names:
        return pd.DataFrame(columns=RUNTIME_COLUMNS)
    by_id = per_run.set_index(col.RUN_ID)
    judge = _Judge(margin, higher_is_better, tables, statistic)
    out = [
        _row(row, by_id.loc[row[col.RUN_IDS].split()], name, metric, judge)
        for _, row in rows.iterrows()
        for name in names
    ]
    table = pd.DataFrame(out)
    return _mark_best(table).reindex(columns=RUNTIME_COLUMNS)


def _row(row: pd.Series, runs: pd.DataFrame, name: str, metric: str, judge: _Judge) -> dict:
    speedup = schema.runtime_speedup(name)
    is_base = row[col.METHOD] == schema.BASELINE
    base = {key: row[key] for key in (col.DATA, col.MODEL, col.VARIANT)}
    base[col.RUNTIME] = name
    skipped = _first(runs, col.tag(schema.runtime_tag(name, "skipped")))
    # The baseline in eager is the reference itself: 1 by definition, never measured.
    reference = 1.0 if is_base and name == EAGER else np.nan
    bs1 = _mean(runs, f"{speedup}_bs1", reference)
    if skipped or np.isnan(bs1):
        return {**base, col.VERDICT: "not run", col.NOTE: skipped or "not measured in this runtime"}
    parity_ok = name == EAGER or _mean(runs, schema.runtime_check(name, "parity"), 0.0) == 1.0
    moved = _mean(runs, schema.runtime_check(name, metric), np.nan) - row.get(
        col.stat(metric), np.nan
    )
    return {
        **base,
        col.FORM: _first(runs, col.tag(schema.runtime_tag(name, "form"))) or "PyTorch eager",
        col.VERDICT: _verdict(row, runs, name, metric, judge) if parity_ok else FAILED_PARITY,
        col.VS_EAGER_BS1: bs1,
        col.VS_EAGER_BSN: _mean(runs, f"{speedup}_bsN", reference),
        col.SPEED: "" if is_base and name == EAGER else speed_verdict(runs, f"{speedup}_bs1"),
        col.VS_FP32: _vs_fp32(runs, name, is_base),
        col.VS_FP32_BEST: _vs_best(runs, name, is_base),
        col.PARITY_DELTA: np.nan if name == EAGER else moved,
        col.MAX_DIFF: _mean(runs, schema.runtime_check(name, "max_abs_diff"), np.nan),
        col.INT8_OPS: _mean(runs, schema.runtime_check(name, "int8_ops"), np.nan),
        col.FILE_MB: _file_mb(runs, name),
        col.NOTE: "" if parity_ok else f"{metric} moved {moved:+.3g} in this runtime",
    }


def _file_mb(runs: pd.DataFrame, name: str) -> float:
    """The file the runtime ships (``runtime/<name>/file_mb``); runs logged before that metric
    existed had one such file, ONNX Runtime's (``size/onnx_mb``)."""
    shipped = _mean(runs, schema.runtime_check(name, schema.RUNTIME_FILE_MB), np.nan)
    if np.isnan(shipped) and name == LEGACY_FILE_RUNTIME:
        return _mean(runs, schema.SIZE_ONNX_MB, np.nan)
    return shipped


@dataclass(frozen=True)
class _Judge:
    """What judging a runtime row needs: the rule, and where its runs' paired tables are."""

    margin: float | None
    higher_is_better: bool
    tables: TableSource | None
    statistic: str | None

    def recombined(self, runs: pd.DataFrame, name: str, method: str) -> str | None:
        """The verdict from the runs' own paired tables in runtime ``name``; None when a run
        has none (logged before they were kept)."""
        if self.tables is None or self.statistic is None or method == schema.BASELINE:
            return None
        found = [self.tables(run_id, schema.runtime_paired_table(name)) for run_id in runs.index]
        if not found or any(table is None for table in found):
            return None
        cells = [cell_of(table) for table in found]
        est = paired_difference(cells, self.statistic, margin=self.margin)
        d = est.discordance
        interval = {
            col.METHOD: method,
            col.DELTA_CI_LOW: est.ci_low,
            col.DELTA_CI_HIGH: est.ci_high,
            col.PAIRS_WORSE: d.worse,
            col.PAIRS_BETTER: d.better,
            col.N_UNITS: est.n_units,
        }
        return verdict_of(interval, self.margin, self.higher_is_better)


def _verdict(row: pd.Series, runs: pd.DataFrame, name: str, metric: str, judge: _Judge) -> str:
    """The runtime's own verdict from its recombined units, else from its widest logged
    interval, else the eager row's."""
    if name == EAGER:
        return row.get(col.VERDICT, "")
    recombined = judge.recombined(runs, name, row[col.METHOD])
    if recombined is not None:
        return recombined
    delta = schema.runtime_check(name, schema.delta_of(metric))
    low, high = (runs.get(col.metric(end)) for end in schema.interval(delta))
    if low is None or high is None or low.isna().any() or high.isna().any():
        return row.get(col.VERDICT, "")
    ends = {col.DELTA_CI_LOW: low.min(), col.DELTA_CI_HIGH: high.max()}
    interval = {col.METHOD: row[col.METHOD], **ends}
    return verdict_of(interval, judge.margin, judge.higher_is_better)


def _vs_fp32(runs: pd.DataFrame, name: str, is_base: bool) -> str:
    """``faster``/``same``/``slower`` than the fp32 model in this runtime, with the ratio."""
    if is_base:
        return ""
    key = f"{schema.runtime_vs_fp32(name)}_bs1"
    ratio = _mean(runs, key, np.nan)
    if np.isnan(ratio):
        return "—"
    return f"{speed_verdict(runs, key)} ({ratio:.2g}x)"


def _vs_best(runs: pd.DataFrame, name: str, is_base: bool) -> str:
    """Against the fp32 model in its fastest runtime, at batch 1 and N (a timing pass's figure:
    ``faster (1.9x)``); ``—`` where no pass measured it."""
    if is_base:
        return ""
    key = schema.runtime_vs_fp32_best(name)
    words = []
    for size in ("bs1", "bsN"):
        ratio = _mean(runs, f"{key}_{size}", np.nan)
        if not np.isnan(ratio):
            words.append(f"{size} {speed_verdict(runs, f'{key}_{size}')} ({ratio:.2g}x)")
    return "; ".join(words) or "—"


def _mark_best(table: pd.DataFrame) -> pd.DataFrame:
    """``best`` = ``*`` on each variant's fastest runtime at bs1 among those that kept parity."""
    table = table.copy()
    table[col.BEST] = ""
    usable = table[(table[col.VERDICT] != FAILED_PARITY) & table[col.VS_EAGER_BS1].notna()]
    if usable.empty:
        return table
    variant = [col.DATA, col.MODEL, col.VARIANT]
    best = usable.groupby(variant, sort=False)[col.VS_EAGER_BS1].idxmax()
    table.loc[best.to_numpy(), col.BEST] = "*"
    return table


def _mean(runs: pd.DataFrame, key: str, default: float) -> float:
    column = col.metric(key)
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
    shown = table if runtime is None else table[table[col.RUNTIME] == runtime]
    shown = shown.copy()
    for column in (col.VS_EAGER_BS1, col.VS_EAGER_BSN):
        shown[column] = _formatted(shown[column], "{:.3g}x", missing="–")
    shown[col.PARITY_DELTA] = _formatted(shown[col.PARITY_DELTA], "{:+.3f}")
    shown[col.MAX_DIFF] = _formatted(shown[col.MAX_DIFF], "{:.1e}")
    shown[col.INT8_OPS] = _formatted(shown[col.INT8_OPS], "{:.0f}")
    shown[col.FILE_MB] = _formatted(shown[col.FILE_MB], "{:.3g}")
    return shown.fillna("")


def _formatted(values: pd.Series, template: str, missing: str = "") -> list[str]:
    return [template.format(v) if pd.notna(v) else missing for v in values]
