"""The fidelity verdict beside the task verdict: does the variant behave like its baseline?

Each method run logs label-free ``fidelity/*`` metrics against its own baseline (decision flips
with an exact bound, rank agreement, the largest decision-margin shift; :mod:`src.stats.fidelity`
judges one run). A row behaves like its baseline only when every one of its runs does; one run
that differs makes the row differ; otherwise it is not shown. It answers "does it make the same
decisions", never "does it detect as well": it does not replace the task verdict, and ranks
after it (:func:`src.board.rank.rank_and_mark`).
"""

from __future__ import annotations

import pandas as pd

from src.board import columns as col
from src.core import schema
from src.stats.fidelity import BEHAVES, DIFFERS, NOT_MEASURED, NOT_SHOWN, fidelity_verdict

ORDER = {BEHAVES: 0, NOT_SHOWN: 1, "": 1, DIFFERS: 2}


def fidelity_columns(rows: pd.DataFrame, per_run: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Per row: the fidelity verdict and its reason line ("" for a baseline or a row whose runs
    logged no fidelity metrics)."""
    by_id = per_run.set_index(col.RUN_ID)
    prefix = col.metric(schema.FIDELITY)
    columns = [c for c in per_run if c.startswith(prefix)]
    verdicts, reasons = [], []
    for _, row in rows.iterrows():
        runs = by_id.loc[row[col.RUN_IDS].split()]
        if row[col.METHOD] == schema.BASELINE or not columns:
            verdicts.append(""), reasons.append("")
            continue
        judged = [_run_verdict(run, columns) for _, run in runs.iterrows()]
        judged = [j for j in judged if j is not None]
        verdict, reason = _combined(judged, len(runs))
        verdicts.append(verdict), reasons.append(reason)
    return verdicts, reasons


def _run_verdict(run: pd.Series, columns: list[str]) -> tuple[str, str] | None:
    values = {col.metric_name(c): float(run[c]) for c in columns if pd.notna(run[c])}
    verdict = fidelity_verdict(values)
    return None if verdict[0] == NOT_MEASURED else verdict


def _combined(judged: list[tuple[str, str]], n_runs: int) -> tuple[str, str]:
    """Every run behaves: behaves (the weakest run's reason); any differs: differs (the first
    that does); else not shown."""
    if not judged:
        return "", ""
    for verdict in (DIFFERS, NOT_SHOWN):
        found = [reason for v, reason in judged if v == verdict]
        if found:
            return verdict, _runs(found[0], len(found), n_runs)
    if len(judged) < n_runs:
        return NOT_SHOWN, f"{n_runs - len(judged)} of {n_runs} runs logged no fidelity metrics"
    return BEHAVES, _runs(judged[-1][1], len(judged), n_runs)


def _runs(reason: str, count: int, n_runs: int) -> str:
    return reason if n_runs == 1 else f"{reason} ({count} of {n_runs} runs)"


def fidelity_order(rows: pd.DataFrame) -> pd.Series:
    """0 behaves like its baseline, 1 not shown (or no fidelity), 2 differs: the rank key
    after the task verdict."""
    if col.FIDELITY not in rows:
        return pd.Series(1, index=rows.index)
    return rows[col.FIDELITY].map(ORDER).fillna(1).astype(int)


def with_fidelity(rows: pd.DataFrame, per_run: pd.DataFrame) -> pd.DataFrame:
    """``fidelity`` per row, its reason appended to the row's ``reason``."""
    rows = rows.copy()
    verdicts, reasons = fidelity_columns(rows, per_run)
    rows[col.FIDELITY] = verdicts
    if col.REASON in rows:
        extra = [
            f"; fidelity: {v} ({r})" if v else "" for v, r in zip(verdicts, reasons, strict=True)
        ]
        rows[col.REASON] = rows[col.REASON].astype(str) + extra
    return rows
