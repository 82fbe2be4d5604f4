"""The Pareto plot: task metric against latency, marker area = file size, labelled points.

Figures are built object-oriented on an Agg canvas (no pyplot), so writing a PNG never touches
the interactive backend of a notebook that imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from src.board.aggregate import COMPARE, LATENCY, SIZE

_AREA = (40.0, 900.0)  # marker area range (points^2) for the smallest / largest file


def draw_pareto(ax: Axes, board: pd.DataFrame, metric: str, higher_is_better: bool = True) -> None:
    """Draw one data set's rows on ``ax``: front points filled and joined, others hollow.

    Args:
        ax: Target axes.
        board: Rows of :func:`src.board.aggregate.build_board` (one data set).
        metric: The ranking metric (y axis); error bars are its std over runs.
        higher_is_better: Only used in the axis label.
    """
    if f"{LATENCY}:mean" not in board:  # runs that logged no latency: nothing to place
        ax.text(0.5, 0.5, f"no run logged {LATENCY}", ha="center", transform=ax.transAxes)
        return
    rows = board.dropna(subset=[f"{metric}:mean", f"{LATENCY}:mean"])
    x, y = rows[f"{LATENCY}:mean"], rows[f"{metric}:mean"]
    yerr = rows.get(f"{metric}:std", pd.Series(np.nan, index=rows.index)).fillna(0.0)
    front = rows["pareto"].astype(bool)
    ax.errorbar(x, y, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=1, zorder=1)
    sizes = _areas(rows.get(f"{SIZE}:mean", pd.Series(np.nan, index=rows.index)))
    ax.scatter(x[~front], y[~front], s=sizes[~front], facecolors="none", edgecolors="0.4", zorder=2)
    ax.scatter(x[front], y[front], s=sizes[front], color="tab:red", alpha=0.75, zorder=3)
    line = rows[front].sort_values(f"{LATENCY}:mean")
    ax.plot(line[f"{LATENCY}:mean"], line[f"{metric}:mean"], "--", color="tab:red", lw=1)
    for (_, row), xi, yi in zip(rows.iterrows(), x, y, strict=True):
        ax.annotate(_label(row), (xi, yi), xytext=(6, 4), textcoords="offset points", fontsize=8)
    direction = "higher is better" if higher_is_better else "lower is better"
    ax.set_xlabel(f"{LATENCY} (mean, lower is better)")
    ax.set_ylabel(f"{metric} (mean ± std, {direction})")
    ax.grid(True, alpha=0.3)


def pareto_figure(
    board: pd.DataFrame, metric: str, higher_is_better: bool = True, note: str = ""
) -> Figure:
    """One panel per data set; ``note`` goes under the panels (commit, command)."""
    groups = list(board.groupby(list(COMPARE), sort=True))
    fig = Figure(figsize=(8, 5.5 * len(groups)), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, ((data, variant), rows) in zip(
        fig.subplots(len(groups), 1, squeeze=False)[:, 0], groups, strict=True
    ):
        draw_pareto(ax, rows, metric, higher_is_better)
        ax.set_title(
            f"{data_label(data, variant)}: Pareto front (filled) over {metric}, latency, size"
        )
    caption = "marker area ∝ size/mb (mean)"
    fig.supxlabel(f"{caption}\n{note}" if note else caption, fontsize=7)
    return fig


def save_pareto_plot(
    board: pd.DataFrame, path: Path, metric: str, higher_is_better: bool = True, note: str = ""
) -> Path:
    """Write :func:`pareto_figure` as a PNG to ``path``."""
    pareto_figure(board, metric, higher_is_better, note).savefig(path, dpi=120)
    return path


def data_label(data: str, variant: str) -> str:
    """``battery (brand3)``, or ``digits`` for a source with one data set."""
    return f"{data} ({variant})" if variant else str(data)


def _areas(size_mb: pd.Series) -> pd.Series:
    """Marker areas proportional to file size, clipped into :data:`_AREA`; NaN -> smallest."""
    low, high = _AREA
    top = size_mb.max()
    if not np.isfinite(top) or top <= 0:
        return pd.Series(low, index=size_mb.index)
    return (size_mb / top * high).clip(lower=low).fillna(low)


def _label(row: pd.Series) -> str:
    return f"{row['model']} {row['variant']}"
