"""The leaderboard's public API, shared by ``python -m src.leaderboard``, the notebook and
``src.reproduce``: load runs from the store, build the ranked board, write the tables. Read-only:
it never trains and never reads ``conf/``. The frames' column names are declared in
:mod:`src.board.columns`.

Example:
    >>> from src.board import build_board, load_runs
    >>> board = build_board(load_runs(filters={"data": "battery"}))  # ranked by primary_metric
    >>> board.rows[["model", "variant", "test/auroc:mean", "pareto"]]
"""

from src.board.aggregate import (
    Board,
    aggregate,
    build_board,
    build_boards,
    is_counted,
    prepare_runs,
    resolve_metric,
    with_ratios,
)
from src.board.meta import BoardMeta, collect_meta, verdict_note
from src.board.pareto import pareto_front
from src.board.plot import draw_pareto, pareto_figure
from src.board.render import display_table, print_table, write_outputs
from src.board.runs import PairedTables, load_runs
from src.board.variants import label_runs

__all__ = [
    "Board",
    "BoardMeta",
    "PairedTables",
    "aggregate",
    "build_board",
    "build_boards",
    "collect_meta",
    "display_table",
    "draw_pareto",
    "is_counted",
    "label_runs",
    "load_runs",
    "pareto_figure",
    "pareto_front",
    "prepare_runs",
    "print_table",
    "resolve_metric",
    "verdict_note",
    "with_ratios",
    "write_outputs",
]
