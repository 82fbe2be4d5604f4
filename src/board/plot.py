"""The Pareto plot: paired score against side-by-side speedup, marker area = size ratio.

Figures are built object-oriented on an Agg canvas (no pyplot), so writing a PNG never touches
the interactive backend of a notebook that imports this module. matplotlib itself is imported
when the first figure is made (:func:`_figure`): a board starts, and reads its runs, without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.rank import GROUP, SIZE_RATIO, SPEEDUP
from src.board.runtimes import FAILED_PARITY

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_AREA = (40.0, 900.0)  # marker area range (points^2) for the smallest / largest file
# Marker and fill by verdict: the baseline a star, non-inferior filled, the rest hollow or a cross.
MARKERS = {
    "baseline": ("*", True),
    "superior": ("^", True),
    "non-inferior": ("o", True),
    "non-inferior but worse": ("v", True),
    "identical": ("D", False),
    "inconclusive": ("s", False),
    "no interval": ("o", False),
    "inferior": ("X", True),
    "": ("o", False),
}


def draw_pareto(ax: Axes, board: pd.DataFrame, metric: str, higher_is_better: bool = True) -> None:
    """Draw one baseline's rows on ``ax``: the side-by-side speedup (x) against the paired score
    (y, error bars: the verdict's 95 % interval, else the std of the paired difference), marker
    area = size ratio, marker shape = verdict, Pareto front in red; no line joins the front.

    Args:
        ax: Target axes.
        board: Rows of :func:`src.board.aggregate.build_board` (one data set and baseline).
        metric: The ranking metric.
        higher_is_better: Only used in the axis label.
    """
    if SPEEDUP not in board:  # runs that logged no speedup: nothing to place
        ax.text(0.5, 0.5, "no run logged a speedup", ha="center", transform=ax.transAxes)
        return
    rows = board.dropna(subset=[col.SCORE, SPEEDUP])
    x, y = rows[SPEEDUP], rows[col.SCORE]
    low, high = _error_bars(rows, metric)
    ax.errorbar(x, y, yerr=[low, high], fmt="none", ecolor="0.6", elinewidth=1, zorder=1)
    sizes = _areas(rows.get(SIZE_RATIO, pd.Series(np.nan, index=rows.index)))
    verdicts = rows.get(col.VERDICT, pd.Series("", index=rows.index)).astype(str)
    verdicts = verdicts.str.replace(r" on \d+ units$", "", regex=True)  # identical on n units
    front = rows[col.PARETO].astype(bool)
    for verdict, (marker, filled) in MARKERS.items():
        for on_front in (False, True):
            pick = (verdicts == verdict) & (front == on_front)
            if not pick.any():
                continue
            color = "tab:red" if on_front else "0.35"
            label = (verdict or "no verdict") + (" (front)" if on_front else "")
            face = color if filled else "none"
            ax.scatter(
                x[pick],
                y[pick],
                s=sizes[pick],
                marker=marker,
                facecolors=face,
                edgecolors=color,
                label=label,
                zorder=3,
            )
    names = rows[col.VARIANT].astype(str).tolist()
    for name, xi, yi, dy in zip(names, x, y, _label_offsets(ax, x, y, names), strict=True):
        ax.annotate(name, (xi, yi), xytext=(7, dy), textcoords="offset points", fontsize=8)
    if len(rows):  # outside the axes, markers one size: it must not hide the points
        legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        for handle in legend.legend_handles:
            handle.set_sizes([50])
    direction = "higher is better" if higher_is_better else "lower is better"
    ax.axvline(1.0, color="0.8", lw=1, zorder=0)  # the baseline's speed
    ax.set_xlabel("speedup at batch 1 vs the baseline (higher is better; how timed: footer)")
    ax.set_ylabel(f"{metric}: baseline + paired difference ({direction})")
    ax.grid(True, alpha=0.3)


def pareto_figure(
    board: pd.DataFrame, metric: str, higher_is_better: bool = True, note: str = ""
) -> Figure:
    """One panel per data set and baseline; ``note`` goes under the panels (commit, command)."""
    labels = data_labels(board)
    groups = list(board.groupby(list(GROUP), sort=True))
    fig = _figure(9.5, 5.5 * len(groups))
    for ax, (_, rows) in zip(
        fig.subplots(len(groups), 1, squeeze=False)[:, 0], groups, strict=True
    ):
        draw_pareto(ax, rows, metric, higher_is_better)
        title = f"{labels[rows.index[0]]}, {rows[col.MODEL].iloc[0]}"
        ax.set_title(f"{title}: Pareto front (filled) over {metric}, speedup, size ratio")
    caption = "marker area ∝ size ratio vs the baseline (mean)"
    fig.supxlabel(f"{caption}\n{note}" if note else caption, fontsize=7)
    return fig


def _figure(width: float, height: float) -> Figure:
    """An empty figure on an Agg canvas (inches). matplotlib is imported here, at the first
    plot, not with the board: it is 30 MB and half a second that loading and ranking never use."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_pareto_plot(
    board: pd.DataFrame, path: Path, metric: str, higher_is_better: bool = True, note: str = ""
) -> Path:
    """Write :func:`pareto_figure` as a PNG to ``path``."""
    pareto_figure(board, metric, higher_is_better, note).savefig(path, dpi=120)
    return path


def _error_bars(rows: pd.DataFrame, metric: str) -> tuple[pd.Series, pd.Series]:
    """Lower and upper bar lengths: the interval of the paired difference where there is one."""
    spread = rows.get(col.stat(col.VS_DELTA, col.STD), rows.get(col.stat(metric, col.STD)))
    spread = (spread if spread is not None else pd.Series(0.0, index=rows.index)).fillna(0.0)
    if col.DELTA_CI_LOW not in rows:
        return spread, spread
    estimate = rows[col.DELTA_ESTIMATE]
    low = (estimate - rows[col.DELTA_CI_LOW]).fillna(spread)
    high = (rows[col.DELTA_CI_HIGH] - estimate).fillna(spread)
    return low.clip(lower=0), high.clip(lower=0)


def data_labels(rows: pd.DataFrame) -> pd.Series:
    """``battery (brand3)``, or ``digits`` for a source with one data set; the content
    fingerprint is added where two data sets of one source and variant sit on one board."""
    data, variant = rows[col.DATA].astype(str), rows[col.DATA_VARIANT]
    labels = data.where(variant == "", data + " (" + variant + ")")
    fingerprints = rows.get(col.DATA_FINGERPRINT, pd.Series("", index=rows.index))
    several = fingerprints.groupby(labels).transform("nunique") > 1
    return labels.where(~several, labels + " [" + fingerprints.str[:8] + "]")


def _areas(size: pd.Series) -> pd.Series:
    """Marker areas proportional to size, clipped into :data:`_AREA`; NaN -> smallest."""
    low, high = _AREA
    top = size.max()
    if not np.isfinite(top) or top <= 0:
        return pd.Series(low, index=size.index)
    return (size / top * high).clip(lower=low).fillna(low)


def _label_offsets(ax: Axes, x: pd.Series, y: pd.Series, names: list[str]) -> list[float]:
    """Vertical label offsets (points) from the top label down: a label that would overprint
    one already placed (they run right of their points) moves down a line until it does not."""
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits before reading positions
    to_points = 72.0 / ax.figure.dpi
    at = ax.transData.transform(np.column_stack([x, y])) * to_points
    line, placed, offsets = 10.0, [], [0.0] * len(names)
    for i in np.argsort(-at[:, 1], kind="stable"):
        left, right = at[i, 0] + 7, at[i, 0] + 7 + 4.8 * len(names[i])  # ~4.8 pt per glyph
        top = at[i, 1] + 3
        while any(a < right and left < b and abs(top - t) < line for a, b, t in placed):
            top -= line
        placed.append((left, right, top))
        offsets[i] = top - at[i, 1]
    return offsets


def save_runtime_plot(table: pd.DataFrame, path: Path, note: str = "") -> Path:
    """Every variant's speedup at batch 1 vs fp32 eager (log x), one colour per runtime; hollow
    where the runtime failed parity. One row of dots per model and variant."""
    rows = table.dropna(subset=[col.VS_EAGER_BS1])
    labels = (rows[col.MODEL] + " " + rows[col.VARIANT]).drop_duplicates().tolist()
    fig = _figure(9.5, 1.0 + 0.4 * max(len(labels), 1))
    ax = fig.subplots()
    position = {label: i for i, label in enumerate(reversed(labels))}
    colours = dict(zip(rows[col.RUNTIME].drop_duplicates(), COLOURS, strict=False))
    for runtime, group in rows.groupby(col.RUNTIME, sort=False):
        y = (group[col.MODEL] + " " + group[col.VARIANT]).map(position)
        x, failed = group[col.VS_EAGER_BS1], (group[col.VERDICT] == FAILED_PARITY).to_numpy()
        colour = colours.get(runtime, "0.3")
        ax.scatter(x[~failed], y[~failed], color=colour, label=runtime, s=50)
        if failed.any():
            label = f"{runtime} ({FAILED_PARITY})"
            ax.scatter(
                x[failed], y[failed], facecolors="none", edgecolors=colour, label=label, s=50
            )
    ax.set_yticks(range(len(labels)), list(reversed(labels)), fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="0.8", lw=1, zorder=0)
    ax.set_xlabel("speedup at batch 1 vs the fp32 model in eager (log scale; how timed: footer)")
    ax.grid(True, axis="x", alpha=0.3)
    if len(rows):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if note:
        fig.supxlabel(note, fontsize=7)
    fig.savefig(path, dpi=120)
    return path


COLOURS = ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple")
