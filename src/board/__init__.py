"""The leaderboard's public API, shared by ``python -m src.leaderboard``, the notebook and
``src.reproduce``: load runs from MLflow, aggregate them into rows, mark the Pareto front, write
the tables.

Example:
    >>> from src.board import leaderboard, load_runs, write_outputs, collect_meta
    >>> runs = load_runs(filters={"data": "battery"})
    >>> board = leaderboard(runs)  # ranked by the data's primary metric
"""

from src.board.aggregate import aggregate, leaderboard, prepare_runs, resolve_metric, with_ratios
from src.board.meta import BoardMeta, collect_meta
from src.board.pareto import pareto_front
from src.board.plot import draw_pareto, pareto_figure
from src.board.render import display_table, print_table, write_outputs
from src.board.runs import find_parent_run, load_runs, open_store
from src.board.variants import label_runs

__all__ = [
    "BoardMeta",
    "aggregate",
    "collect_meta",
    "display_table",
    "draw_pareto",
    "find_parent_run",
    "label_runs",
    "leaderboard",
    "load_runs",
    "open_store",
    "pareto_figure",
    "pareto_front",
    "prepare_runs",
    "print_table",
    "resolve_metric",
    "with_ratios",
    "write_outputs",
]
