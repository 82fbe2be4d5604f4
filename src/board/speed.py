"""Where a board's speed comes from, and what it may be used for.

A run timed by a timing pass (``python -m src.timing``: tag ``timing.run_id``, metrics
``timing/<runtime>/...``) reads its speed from the pass: fresh processes, the process resampled,
so speedups of different runs compare. Its in-run figures (``latency/...``, one process beside
its own baseline) are replaced in the run frame, so every column, speed verdict and the runtime
table use the pass's estimate and interval. A run no pass timed keeps its in-run figure, labelled
"within one process": it compares a variant with its own baseline, never one run with another,
so no Pareto front is drawn over it (:func:`comparable_speed`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.board import columns as col
from src.core import schema

PASS, IN_RUN = "fresh processes", "within one process"
_KINDS = ("speedup_", "vs_fp32_")  # timing/<runtime>/<kind><size>[_ci_low|_ci_high]


def speed_from_pass(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each timed run's speed figures taken from its pass (NaN where the pass had
    none for a runtime: never a mix of the two sources in one run), and ``speed_source``."""
    out = runs.copy()
    tag = col.tag(schema.TIMING_RUN_ID)
    timed = out[tag].notna() if tag in out else pd.Series(False, index=out.index)
    for source in [c for c in out.columns if c.startswith(col.metric(schema.TIMING))]:
        runtime, _, rest = col.metric_name(source).removeprefix(schema.TIMING).partition("/")
        if not rest.startswith(_KINDS):
            continue
        targets = [f"{schema.LATENCY}{runtime}/{rest}"]
        if runtime == schema.EAGER and rest.startswith("speedup_"):
            targets.append(f"{schema.LATENCY}{rest}")  # latency/speedup_bs1: the eager speedup
            # in eager the fp32 model of the same runtime is the eager reference itself
            targets.append(f"{schema.LATENCY}{runtime}/{rest.replace('speedup_', 'vs_fp32_', 1)}")
        for target in map(col.metric, targets):
            kept = out[target] if target in out else pd.Series(np.nan, index=out.index)
            out[target] = out[source].where(timed, kept)
    out[col.SPEED_SOURCE] = np.where(timed, PASS, IN_RUN)
    return out


def comparable_speed(per_run: pd.DataFrame) -> bool:
    """Whether every run's speed came from a timing pass (a Pareto front may use it)."""
    source = per_run.get(col.SPEED_SOURCE)
    return source is not None and len(source) > 0 and bool((source == PASS).all())


def speed_note(per_run: pd.DataFrame) -> str:
    """How the board's speedups were measured, in one line for every output."""
    source = per_run.get(col.SPEED_SOURCE, pd.Series(IN_RUN, index=per_run.index))
    timed = per_run[source == PASS]
    parts = []
    if not timed.empty:
        setups = sorted({_setup(row) for _, row in timed.iterrows()})
        parts.append(
            f"speed: {len(timed)} run(s) from a timing pass ({'; '.join(setups)}; intervals: t "
            "over processes, timing/*)"
        )
    untimed = int((source != PASS).sum())
    if untimed:
        parts.append(
            f"speed: {untimed} run(s) {IN_RUN} (each beside its own baseline, calls resampled "
            "inside it: not comparable across runs, no Pareto front over speed; python -m "
            "src.timing times them in fresh processes)"
        )
    return "; ".join(parts)


def _setup(row: pd.Series) -> str:
    def get(name: str) -> str:
        value = row.get(col.tag(name))
        return "?" if value is None or (isinstance(value, float) and np.isnan(value)) else value

    return (
        f"{get(schema.TIMING_PROCESSES)} fresh processes x {get(schema.TIMING_ROUNDS)} rounds, "
        f"{get(schema.TIMING_THREADS)} threads"
    )
