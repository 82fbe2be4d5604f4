"""Which variant of a board ships, and in which runtime: the board's choice, or the user's.

The board's choice is the fastest variant (at batch 1, in its best runtime) on the Pareto front
whose task verdict, Holm-adjusted over the variants judged against the same baseline, is
non-inferior, or whose label-free fidelity verdict says it behaves like its baseline. A variant
the user names ships unless the board found it inferior (then only with ``force=true``, which
the version records). Either way it ships in a runtime that kept parity and that a pyfunc model
can serve (eager, or ONNX Runtime from the run's ONNX file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.board import Board
from src.board import columns as col
from src.board.runtimes import FAILED_PARITY
from src.board.verdict import INFERIOR, SHOWN_NON_INFERIOR
from src.core import schema
from src.core.errors import UserError
from src.stats.fidelity import BEHAVES

SERVABLE = (schema.EAGER, "onnxruntime")  # runtimes src.serve can run a variant in
BOARD_CHOICE, NAMED, FORCED = "the board's choice", "named by the user", "named, forced"


@dataclass(frozen=True)
class Choice:
    """A variant to ship.

    Attributes:
        row: Its board row (verdict, interval, fidelity, ratios, reason).
        runtime: Its runtime row (speedup, parity, file) in the runtime it ships in.
        run_id: The run whose model ships.
        chosen_by: :data:`BOARD_CHOICE`, :data:`NAMED` or :data:`FORCED`.
    """

    row: pd.Series
    runtime: pd.Series
    run_id: str
    chosen_by: str

    @property
    def variant(self) -> str:
        return str(self.row[col.VARIANT])

    @property
    def runtime_name(self) -> str:
        return str(self.runtime[col.RUNTIME])


def choose(
    board: Board, variant: str | None = None, runtime: str | None = None, force: bool = False
) -> Choice:
    """The variant to ship (see the module). Every refusal is one line that says what to do.

    Raises:
        UserError: Several data sets or models on the board, an unknown variant, an inferior
            one without ``force``, no qualifying variant, a runtime that failed parity or
            cannot serve, or a variant that aggregates several runs.
    """
    rows = board.rows
    groups = rows.groupby(list(col.GROUP), dropna=False).ngroups
    if groups != 1:
        raise UserError(
            f"the selection holds {groups} baselines (data sets x models); narrow it with "
            "data=, model= or data_variant= so that one board remains"
        )
    if variant is None:
        row, chosen_by = _board_choice(board), BOARD_CHOICE
    else:
        row, chosen_by = _named(rows, variant, force)
    return Choice(row, _runtime(board, row, runtime), _one_run(row), chosen_by)


def _named(rows: pd.DataFrame, variant: str, force: bool) -> tuple[pd.Series, str]:
    found = rows[rows[col.VARIANT] == variant]
    if found.empty:
        raise UserError(f"variant={variant} is not on this board; it has {list(rows[col.VARIANT])}")
    row = found.iloc[0]
    if INFERIOR in (row[col.VERDICT], row.get(col.VERDICT_HOLM)):
        if not force:
            raise UserError(
                f"variant={variant} is inferior to its baseline ({_interval(row)}); ship it "
                "anyway with force=true (the version records it)"
            )
        return row, FORCED
    return row, NAMED


def _board_choice(board: Board) -> pd.Series:
    rows = board.rows
    shown = rows[col.VERDICT_HOLM].isin(SHOWN_NON_INFERIOR) | (rows[col.FIDELITY] == BEHAVES)
    fit = rows[rows[col.PARETO].astype(bool) & shown & (rows[col.METHOD] != schema.BASELINE)]
    if fit.empty:
        said = ", ".join(f"{r[col.VARIANT]}: {r[col.VERDICT_HOLM]}" for _, r in rows.iterrows())
        raise UserError(
            f"no variant on this board's Pareto front is shown non-inferior or to behave like "
            f"its baseline ({said}); name one with variant=NAME"
        )
    speed = [_best_speedup(board, r) for _, r in fit.iterrows()]
    return fit.iloc[_fastest(speed)]


def _best_speedup(board: Board, row: pd.Series) -> float:
    """The speedup at batch 1 in the runtime the variant would ship in (NaN: none can)."""
    try:
        return float(_runtime(board, row, None).get(col.VS_EAGER_BS1, np.nan))
    except UserError:
        return np.nan


def _runtimes(board: Board, row: pd.Series) -> pd.DataFrame:
    table = board.runtimes
    if table.empty:
        return pd.DataFrame(columns=list(col.RUNTIME_COLUMNS))
    keys = (col.DATA, col.MODEL, col.VARIANT)
    return table[np.logical_and.reduce([table[k] == row[k] for k in keys])]


def _runtime(board: Board, row: pd.Series, runtime: str | None) -> pd.Series:
    """The runtime row it ships in: the one named, or its fastest that kept parity."""
    found = _runtimes(board, row)
    if found.empty:  # runs timed in eager only, or before runtimes were recorded
        return pd.Series({col.RUNTIME: schema.EAGER, col.VERDICT: row[col.VERDICT]})
    if runtime is not None:
        named = found[found[col.RUNTIME] == runtime]
        if named.empty or runtime not in SERVABLE:
            raise UserError(f"runtime={runtime} cannot serve {row[col.VARIANT]}; use {SERVABLE}")
        verdict = str(named.iloc[0][col.VERDICT])
        if verdict in (FAILED_PARITY, "not run"):
            note = named.iloc[0][col.NOTE] or verdict
            raise UserError(
                f"variant {row[col.VARIANT]} {verdict} in {runtime} ({note}); ship it in another "
                "runtime (runtime=eager) or leave runtime unset for its best"
            )
        return named.iloc[0]
    kept = found[found[col.RUNTIME].isin(SERVABLE) & ~found[col.VERDICT].isin([FAILED_PARITY])]
    kept = kept[kept[col.VERDICT] != "not run"]
    if kept.empty:
        raise UserError(f"variant {row[col.VARIANT]} kept parity in no servable runtime {SERVABLE}")
    return kept.iloc[_fastest(kept[col.VS_EAGER_BS1])]


def _fastest(speedups) -> int:
    """Position of the largest speedup; an unmeasured one (NaN) counts least, ties go first."""
    return int(np.argmax(np.nan_to_num(np.asarray(speedups, float), nan=-np.inf)))


def _one_run(row: pd.Series) -> str:
    ids = str(row[col.RUN_IDS]).split()
    if len(ids) != 1:
        raise UserError(
            f"variant {row[col.VARIANT]} aggregates {len(ids)} runs (folds {row[col.FOLDS]}, "
            f"seeds {row[col.SEEDS]}); ship one trained model: add +tags.fold=N +tags.seed=N"
        )
    return ids[0]


def _interval(row: pd.Series) -> str:
    est, low, high = (row.get(k, np.nan) for k in col.DELTA_INTERVAL)
    return f"Δ {est:+.3f} [{low:+.3f}, {high:+.3f}]"
