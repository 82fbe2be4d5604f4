"""Writers: the board as Markdown, CSV, HTML, a JSON sidecar and the Pareto PNG, each carrying
its provenance (commit, command, how measured); and the terminal table."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from src.board import columns as col
from src.board.aggregate import Board
from src.board.meta import BoardMeta
from src.board.plot import data_labels, save_pareto_plot, save_runtime_plot
from src.board.runtimes import runtime_display
from src.board.speed import speed_note
from src.core import schema

# Measurement columns: (board metric, header).
MEASURED = (
    (schema.SIZE_MB, "size MB"),
    (col.VS_SIZE, "size vs base"),
    (col.VS_MS_BS1, "p50 ms bs1 (baseline ÷ speedup)"),
    (col.VS_SPEEDUP_BS1, "speedup bs1"),
    (col.VS_SPEEDUP_BSN, "speedup bsN"),
    (col.VS_DELTA, "Δ {metric}"),
    (schema.INT8_FRACTION, "int8 frac"),
)
STEM = "leaderboard"


def display_table(rows: pd.DataFrame, metric: str, headline: Sequence[str] = ()) -> pd.DataFrame:
    """The board's rows as text cells (``mean ± std``), the columns people read: the ranking
    metric, the ``headline`` task metrics, the measurements; all-empty columns dropped.

    The full numbers (mean, std and n of every metric, run ids) are in the CSV.
    """
    table = pd.DataFrame({col.RANK: rows[col.RANK].astype(str).replace("<NA>", "–")})
    table[col.DATA] = data_labels(rows)
    for name in (col.MODEL, col.VARIANT, col.N_RUNS, col.VERDICT, col.VERDICT_HOLM, col.FIDELITY):
        if name in rows and (rows[name].astype(str) != "").any():
            table[name] = rows[name].astype(str)
    shown = [(metric, metric), *((m, m) for m in headline if m != metric), *MEASURED]
    for column, template in shown:
        header = template.format(metric=metric)
        if column == col.VS_DELTA and col.DELTA_CI_LOW in rows:
            table[interval_header(metric)] = [_interval(r) for _, r in rows.iterrows()]
        elif _has_interval(rows, column):
            table[f"{header} [95% CI]"] = interval_cells(rows, column)
        elif col.stat(column) in rows and rows[col.stat(column)].notna().any():
            table[header] = [_cell(m, s) for m, s in _mean_std(rows, column)]
    if col.SPEED in rows:
        table[col.SPEED] = rows[col.SPEED].astype(str)
    table[col.PARETO] = np.where(rows[col.PARETO].astype(bool), "✓", "")
    return table


def _has_interval(rows: pd.DataFrame, column: str) -> bool:
    low = col.stat(schema.interval(column)[0])
    return low in rows and rows[low].notna().any() and col.stat(column) in rows


def interval_cells(rows: pd.DataFrame, column: str) -> list[str]:
    """``0.700 [0.348, 0.933]``: a metric with the interval its runs logged (recall and false
    alarms: exact Clopper-Pearson over the test vehicles); over several runs, the mean ± std and
    the widest of their intervals (vehicles recur across folds: no pooled interval is claimed)."""
    ends = schema.interval(column)
    low, high = col.stat(ends[0], col.MIN), col.stat(ends[1], col.MAX)
    lows = rows.get(low, rows[col.stat(schema.interval(column)[0])])
    highs = rows.get(high, rows[col.stat(schema.interval(column)[1])])
    cells = []
    for (mean, std), lo, hi, n in zip(
        _mean_std(rows, column), lows, highs, rows[col.stat(column, col.COUNT)], strict=True
    ):
        bounds = f" [{lo:.3g}, {hi:.3g}]" if pd.notna(lo) and pd.notna(hi) else ""
        cells.append((_cell(mean, std if n > 1 else np.nan) + bounds) if pd.notna(mean) else "–")
    return cells


def interval_header(metric: str) -> str:
    """The interval column's header: which interval, at which error rate."""
    return f"Δ {metric} [95% CI; α=0.025 each side]"


def _interval(row: pd.Series) -> str:
    """``-0.004 [-0.015, +0.008]``; the baseline shows 0; no interval shows the mean ± std."""
    if row.get(col.METHOD) == schema.BASELINE:
        return "0"
    estimate, low, high = (row[name] for name in col.DELTA_INTERVAL)
    if not (np.isfinite(low) and np.isfinite(high)):
        mean = row.get(col.stat(col.VS_DELTA), np.nan)
        return _cell(mean, row.get(col.stat(col.VS_DELTA, col.STD)))
    return f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"


def write_outputs(
    board: Board, out_dir: str | Path, meta: BoardMeta, stem: str = STEM
) -> dict[str, Path]:
    """Write ``<stem>.{md,csv,html,json}`` and ``<stem>_pareto.png`` into ``out_dir``.

    Args:
        board: Output of :func:`src.board.aggregate.build_board`.
        out_dir: Folder, created if missing.
        meta: Provenance (:func:`src.board.meta.collect_meta`).
        stem: File name stem (``leaderboard``; one per task family when a store holds several).

    Returns:
        ``{"md"|"csv"|"html"|"json"|"png": path}``.

    Example:
        >>> paths = write_outputs(board, "outputs/leaderboard/demo", meta)
        >>> paths["md"].read_text().splitlines()[0]
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = display_table(board.rows, board.metric, board.headline)
    note = f"commit {meta.commit} · {meta.command}" + plot_verdict_note(board)
    note += f"\n{speed_note(board.per_run)}"  # how the x axis was timed
    paths = {
        "png": save_pareto_plot(
            board.rows, out / f"{stem}_pareto.png", board.metric, board.higher_is_better, note
        ),
        "md": _write(out / f"{stem}.md", to_markdown(table, meta, stem)),
        "csv": _write(out / f"{stem}.csv", to_csv(board.rows, meta)),
        "html": _write(out / f"{stem}.html", to_html(table, meta, stem)),
        "json": _write(out / f"{stem}.json", to_json(board.rows, meta, board.runtimes)),
    }
    if not board.runtimes.empty:
        shown = runtime_display(board.runtimes)
        paths["runtimes.csv"] = _write(out / f"{stem}_runtimes.csv", to_csv(board.runtimes, meta))
        paths["runtimes.png"] = save_runtime_plot(
            board.runtimes, out / f"{stem}_runtimes.png", note
        )
        with paths["md"].open("a", encoding="utf-8") as md:
            md.write("\n## By runtime\n\n" + markdown_table(shown, RUNTIME_TEXT) + "\n\n")
            md.write(f"![Speedup by runtime]({stem}_runtimes.png)\n")
    return paths


def plot_verdict_note(board: Board) -> str:
    """The error rate behind the plot's markers, on its own line under the panels."""
    how = board.judgement
    if board.margin is None:
        return ""
    return (
        f"\nverdicts: one-sided α = {how.alpha:g} each, margin {board.margin:g}, k = {how.k}"
        " variants per baseline, unadjusted (the tables' 'verdict (Holm)' adjusts for k);"
        f" error bars: {'; '.join(how.methods) or 'the runs own intervals'}"
    )


def markdown_table(table: pd.DataFrame, text_columns) -> str:
    """A Markdown table: ``text_columns`` left-aligned, the others right; ``|`` escaped, NaN
    empty."""
    header = "| " + " | ".join(_md_escape(c) for c in table.columns) + " |"
    align = "|" + "|".join("---" if c in text_columns else "---:" for c in table.columns) + "|"
    rows = [
        "| " + " | ".join("" if pd.isna(v) else _md_escape(v) for v in row) + " |"
        for row in table.to_numpy()
    ]
    return "\n".join([header, align, *rows])


def to_markdown(table: pd.DataFrame, meta: BoardMeta, stem: str = STEM) -> str:
    """A Markdown page: title, provenance list, the table, the plot."""
    provenance = [f"- {key}: {_md_value(key, value)}" for key, value in meta.items()]
    return "\n".join(
        [
            f"# Leaderboard: {meta.selection}",
            "",
            *provenance,
            "",
            markdown_table(table, [c for c in table.columns if _is_text(c)]),
            "",
            f"![Pareto front]({stem}_pareto.png)",
            "",
        ]
    )


def to_csv(board: pd.DataFrame, meta: BoardMeta) -> str:
    """The full board, preceded by ``# key: value`` provenance lines (read it back with
    ``pd.read_csv(path, comment="#")``)."""
    comments = "".join(f"# {line}\n" for line in meta.lines())
    return comments + board.to_csv(index=False)


def to_json(board: pd.DataFrame, meta: BoardMeta, runtimes: pd.DataFrame | None = None) -> str:
    """The provenance and every row of the board (verdicts, intervals, ratios; NaN as null),
    and its rows per deployment runtime."""
    rows = json.loads(board.to_json(orient="records", double_precision=15))
    out = {**meta.to_dict(), "rows": rows}
    if runtimes is not None and not runtimes.empty:
        out["runtimes"] = json.loads(runtimes.to_json(orient="records", double_precision=15))
    return json.dumps(out, indent=2) + "\n"


def to_html(table: pd.DataFrame, meta: BoardMeta, stem: str = STEM) -> str:
    """A standalone HTML page with the provenance, the table and the plot."""
    items = "\n".join(f"<li>{html.escape(line)}</li>" for line in meta.lines())
    body = table.to_html(index=False, escape=True, border=0, classes="leaderboard")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Leaderboard: {html.escape(meta.selection)}</title>\n"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>"
        f"</head><body>\n<h1>Leaderboard: {html.escape(meta.selection)}</h1>\n"
        f"<ul>\n{items}\n</ul>\n{body}\n"
        f"<p><img src='{stem}_pareto.png' alt='Pareto front'></p>\n</body></html>\n"
    )


# Left-aligned: the labels and words (numbers align right).
TEXT = (
    col.DATA,
    col.MODEL,
    col.VARIANT,
    col.VERDICT,
    col.VERDICT_HOLM,
    col.FIDELITY,
    col.SPEED,
    col.PARETO,
)
# What the terminal shows (the files keep every column): the verdict and what it rests on.
TERMINAL = (col.RANK, col.N_RUNS, *TEXT, "speedup bs1", "size vs base")


def print_table(
    board: Board, meta: BoardMeta, console: Console | None = None, runtime: str | None = None
) -> None:
    """The verdict table in the terminal (columns that are the same in every row go to the
    title), one line per variant saying why, and the provenance as caption."""
    if console is None:
        console = Console()
        console = console if console.is_terminal else Console(width=160)  # no 80-column wrap
    direction = "higher" if board.higher_is_better else "lower"
    shown = terminal_table(display_table(board.rows, board.metric, board.headline), board.metric)
    constant = [c for c in (col.DATA, col.MODEL) if c in shown and shown[c].nunique() == 1]
    where = ", ".join(f"{c} {shown[c].iloc[0]}" for c in constant)
    table = Table(
        title=f"leaderboard{': ' + where if where else ''}: {board.metric} ({direction} is better)",
        caption_justify="left",
    )
    shown = shown.drop(columns=constant)
    for column in shown.columns:
        table.add_column(column, justify="left" if _is_text(column) else "right")
    for row in shown.to_numpy():
        table.add_row(*(str(v) for v in row))
    table.caption = "\n".join(meta.lines())
    console.print(table)
    for line in reason_lines(board.rows):
        console.print(line, highlight=False, soft_wrap=True)
    if not board.runtimes.empty:
        console.print(runtime_table(runtime_display(board.runtimes, runtime)))


# The runtime rows' text columns, and those the terminal shows (the files keep every column).
RUNTIME_TEXT = (*TEXT, col.RUNTIME, col.FORM, col.VS_FP32, col.VS_FP32_BEST, col.BEST, col.NOTE)
# The terminal's runtime rows: data and model are in the board's title, the rest in the files.
RUNTIME_TERMINAL = tuple(
    c for c in col.RUNTIME_COLUMNS if c not in (col.DATA, col.MODEL, col.FORM, col.FILE_MB)
)


def runtime_table(shown: pd.DataFrame) -> Table:
    """The variant x runtime rows: speed against fp32 eager and fp32 in the same runtime,
    parity, and each variant's best runtime (``*``)."""
    table = Table(
        title="by runtime: speedup vs fp32 eager; verdicts only where the runtime kept parity",
        caption="best (*): fastest runtime at bs1 that kept parity. vs fp32 same runtime: did "
        "compressing beat running the fp32 model there?",
        caption_justify="left",
    )
    columns = [c for c in RUNTIME_TERMINAL if c in shown]
    for column in columns:
        table.add_column(column, justify="left" if column in RUNTIME_TEXT else "right")
    for row in shown[columns].to_numpy():
        table.add_row(*(str(v) for v in row))
    return table


def terminal_table(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The columns of :data:`TERMINAL` that ``table`` has, the metric after the verdict."""
    keep = [c for c in table.columns if c in TERMINAL or c[0] == "Δ" or c == metric]
    return table[keep]


def reason_lines(rows: pd.DataFrame) -> list[str]:
    """``dynamic  non-inferior (Δ ...), 1.4x faster at bs1, 0.26x size``: a padded label and
    the reason, per judged row."""
    if col.REASON not in rows:
        return []
    variant, model = rows[col.VARIANT], rows[col.MODEL]
    label = variant if model.nunique() == 1 else model + " " + variant
    width = int(label.str.len().max())
    return [f"{name:<{width}}  {why}" for name, why in zip(label, rows[col.REASON], strict=True)]


def _mean_std(board: pd.DataFrame, column: str):
    std = board.get(col.stat(column, col.STD), pd.Series(np.nan, index=board.index))
    return zip(board[col.stat(column)], std, strict=True)


def _cell(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.3g}" if pd.isna(std) else f"{mean:.3g} ± {std:.2g}"


def _is_text(column: str) -> bool:
    return column in TEXT or column[0] == "Δ"


def _md_escape(value: object) -> str:
    return str(value).replace("|", "\\|")


def _md_value(key: str, value: str) -> str:
    """Code-like values verbatim (underscores and stars must not turn into emphasis)."""
    return f"`{value}`" if key in ("commit", "command", "store") else _md_escape(value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
