"""Ranking rows against their own baseline, with numbers that were measured side by side.

A variant is compared with the fp32 model it was made from: rows are ranked, and the Pareto front
taken, within one data set (source, variant, content) and one baseline (model and its settings).
Its score is the baseline's mean plus the variant's paired difference (each of its runs minus its
own baseline, evaluated in the same process on the same folds and seeds), so a variant measured on
fewer folds is not moved up or down by the folds it lacks. Speed and size enter the front as the
ratios each run measured against its baseline in one process (``latency/speedup_bs1``,
``size/ratio``), never as absolute times taken in different runs under different load; the
milliseconds shown are the baseline's own time divided by that speedup.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.fidelity import fidelity_order
from src.board.pareto import pareto_front
from src.board.verdict import NON_INFERIOR, tier_of
from src.core import schema

COMPARE, GROUP = col.COMPARE, col.GROUP  # one data set; one baseline
DECIMALS = 9  # scores compare at this precision: float noise is no difference
SPEEDUP = col.stat(col.VS_SPEEDUP_BS1)  # the mean side-by-side speedup at batch 1
SIZE_RATIO = col.stat(col.VS_SIZE)  # the mean size ratio
DERIVED_MS = col.stat(col.VS_MS_BS1)  # the baseline's p50 ms at batch 1 over SPEEDUP


def paired_score(board: pd.DataFrame, metric: str) -> pd.Series:
    """Baseline mean + the row's mean paired difference from it (``vs_baseline/delta``); the
    raw mean where no paired difference exists (a metric without ``delta/``, no baseline row)."""
    raw = board[col.stat(metric)]
    delta = board.get(col.stat(col.VS_DELTA))
    if delta is None or not metric.startswith(schema.TEST):
        return raw
    return (_baseline_value(board, col.stat(metric)) + delta).fillna(raw)


def derived_ms(board: pd.DataFrame) -> pd.Series:
    """The baseline's own p50 latency at batch 1 divided by the row's side-by-side speedup."""
    column = col.stat(schema.LATENCY_BS1)
    if column not in board or SPEEDUP not in board:
        return pd.Series(np.nan, index=board.index)
    return _baseline_value(board, column) / board[SPEEDUP]


def rank_and_mark(
    board: pd.DataFrame, metric: str, higher_is_better: bool, speed: bool = True
) -> pd.DataFrame:
    """``score``, ``rank`` and ``pareto`` within each baseline's group, plus the derived latency.

    With verdicts (:func:`src.board.verdict.judge`) rows rank by verdict first (the baseline and
    the variants shown non-inferior, then identical, inconclusive ones and those without an
    interval, then inferior ones), then by fidelity (behaves like its baseline, not shown,
    differs: :mod:`src.board.fidelity`), then by score; a non-inferior variant whose interval
    contains 0 ties with its baseline. The Pareto front is then over speedup and size among the
    baseline and the variants shown non-inferior only. Without verdicts: by score, front over
    score, speedup and size. ``speed=False`` (speedups measured within one process, not
    comparable across runs: :mod:`src.board.speed`) leaves speed out of the front.
    Scores compare at :data:`DECIMALS` decimals, so float noise is a tie."""
    board = board.copy()
    board[col.SCORE] = paired_score(board, metric)
    board[DERIVED_MS] = derived_ms(board)
    sign = -1 if higher_is_better else 1  # smaller key = better
    key = board[col.SCORE].round(DECIMALS) * sign
    tier = pd.Series(0, index=board.index)
    objectives = {col.SCORE: "max" if higher_is_better else "min"}
    objectives.update({SPEEDUP: "max", SIZE_RATIO: "min"} if speed else {SIZE_RATIO: "min"})
    eligible = pd.Series(True, index=board.index)
    if col.VERDICT in board:
        baseline_key = _baseline_value(board, col.SCORE).round(DECIMALS) * sign
        key = key.where(~_ties_baseline(board), baseline_key)
        tier = board[col.VERDICT].astype(str).map(tier_of)
        eligible = tier == 0
        tier = tier * 10 + fidelity_order(board)
        objectives.pop(col.SCORE)
    board[col.RANK] = _lexicographic_rank(board, tier, key).astype("Int64")
    compared = board[[c for c in objectives if c in board]].round(DECIMALS)
    board[col.PARETO] = False
    for _, group in board[eligible].groupby(list(GROUP)):
        board.loc[group.index, col.PARETO] = pareto_front(compared.loc[group.index], objectives)
    board = board.sort_values([*GROUP, col.RANK, col.VARIANT], na_position="last")
    return board[[col.RANK, *[c for c in board if c != col.RANK]]].reset_index(drop=True)


def _ties_baseline(board: pd.DataFrame) -> pd.Series:
    """Non-inferior variants whose interval of difference contains 0: no different from it."""
    low, high = board.get(col.DELTA_CI_LOW), board.get(col.DELTA_CI_HIGH)
    if low is None or high is None:
        return pd.Series(False, index=board.index)
    return (board[col.VERDICT] == NON_INFERIOR) & (low <= 0) & (high >= 0)


def _lexicographic_rank(board: pd.DataFrame, tier: pd.Series, key: pd.Series) -> pd.Series:
    """1 + the rows of the same group strictly ahead in (tier, key); NaN keys rank last."""
    ranks = pd.Series(np.nan, index=board.index)
    filled = key.fillna(np.inf)
    for _, group in board.groupby(list(GROUP)):
        t, k = tier[group.index].to_numpy(), filled[group.index].to_numpy()
        ahead = (t[None, :] < t[:, None]) | ((t[None, :] == t[:, None]) & (k[None, :] < k[:, None]))
        ranks[group.index] = 1 + ahead.sum(axis=1)
    return ranks


def _baseline_value(board: pd.DataFrame, column: str) -> pd.Series:
    """``column`` of each row's baseline row (same data set, model and settings); NaN if none."""
    base = board[board[col.METHOD] == schema.BASELINE]
    values = dict(zip(map(tuple, base[list(GROUP)].to_numpy()), base[column], strict=True))
    keys = map(tuple, board[list(GROUP)].to_numpy())
    return pd.Series([values.get(key, np.nan) for key in keys], index=board.index, dtype=float)
