"""The Pareto plot's layout: ``python -m pytest tests/board/test_plot.py``."""

import itertools

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from src.board.columns import SCORE
from src.board.plot import draw_pareto
from src.board.rank import SIZE_RATIO, SPEEDUP


def _rows() -> pd.DataFrame:
    """The make-run board's crowded corner: labels of neighbours within 0.2x and 0.003 AUROC."""
    return pd.DataFrame(
        {
            "variant": ["baseline", "dynamic", "prune_structured", "prune_dynamic", "distill"],
            "verdict": ["baseline", "inconclusive", "inconclusive", "inconclusive", "inferior"],
            SCORE: [0.858, 0.858, 0.860, 0.861, 0.70],
            SPEEDUP: [1.0, 1.36, 1.40, 1.55, 1.77],
            SIZE_RATIO: [1.0, 0.26, 0.27, 0.07, 0.07],
            "pareto": [True, False, False, False, False],
        }
    )


def test_labels_do_not_overprint_and_the_legend_stays_off_the_points():
    fig = Figure(figsize=(9.5, 5.5), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    draw_pareto(ax, _rows(), "test/auroc")
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text() in set(_rows()["variant"])]
    assert sorted(t.get_text() for t in labels) == sorted(_rows()["variant"])
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # outside, right of the axes
