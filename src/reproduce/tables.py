"""Published tables rebuilt from logged runs, each in the layout its readers know.

Every cell is read from a run (mean ± std when the table spans folds); published numbers are
printed beside ours, never mixed into them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.render import markdown_table
from src.core import schema
from src.core.errors import UserError

RULE = "=" * 80
_METHOD, _FOLD = col.tag(schema.METHOD), col.tag(schema.FOLD)  # the block's runs' columns
AUROC = "test/auroc"  # the fold table's metric (DyAD's)
_BATCH = re.compile(r"ms_p50_bs(\d+)$")  # the batch size of a schema.latency_p50 name


def stats(rows: pd.DataFrame, method: str, metric: str) -> tuple[float, float, int]:
    """Mean, std (ddof=1; 0 for one value) and n of ``metric`` over ``method``'s runs."""
    column = col.metric(metric)
    values = rows.loc[rows[_METHOD] == method, column] if column in rows else pd.Series()
    values = values.dropna().astype(float)
    if values.empty:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, len(values)


def cell(mean: float, std: float, n: int, fmt: str) -> str:
    if n == 0 or np.isnan(mean):
        return "—"
    return f"{mean:{fmt}}" + (f" ± {std:{fmt}}" if n > 1 else "")


def batch_latency_metric(rows: pd.DataFrame) -> str:
    """``latency/ms_p50_bs<N>`` with the largest N the runs measured (the per-batch time)."""
    sizes = [int(m.group(1)) for c in rows for m in [_BATCH.search(c)] if m]
    return schema.latency_p50(max(sizes)) if sizes else schema.LATENCY_BS1


def primary_metric(rows: pd.DataFrame) -> str:
    """The one ``primary_metric`` the block's runs were tagged with by their task."""
    column = col.tag(schema.PRIMARY_METRIC)
    found = set(rows[column].dropna()) if column in rows else set()
    if len(found) != 1:
        raise UserError(
            f"a table block's runs must share one {schema.PRIMARY_METRIC} tag; found "
            f"{sorted(found)} (retrain them with this version of src.train)"
        )
    return found.pop()


def metric_header(metric: str) -> str:
    """The seed table's column name: ``AUROC`` for ``test/auroc``, ``Accuracy`` for
    ``test/accuracy``."""
    name = metric.partition("/")[2] or metric
    return name.upper() if name == "auroc" else name.replace("_", " ").capitalize()


def dyad_dynamic(spec, blocks: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows ``ours`` and ``published`` per method; columns as the spec lists them."""
    rows = blocks[spec.blocks[0].name]
    table = []
    for method in spec.blocks[0].methods:
        ours = {"Model": spec.labels[method], "Source": f"ours (n={_n(rows, method)})"}
        published = {"Model": spec.labels[method], "Source": "published"}
        for column in spec.columns:
            ours[column.header] = cell(*stats(rows, method, column.metric), column.fmt)
            value = spec.published.get(method, {}).get(column.metric)
            published[column.header] = "—" if value is None else f"{value:{column.fmt}}"
        table += [ours, published]
    return pd.DataFrame(table)


def quant_summary(spec, blocks: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The summary's columns for every block: size, task metric, batch latency, speedup.

    Inference (ms) is the FP32 run's own time at the batch size, divided by each method's
    speedup measured side by side with FP32 in the method's run."""
    table = []
    for block in spec.blocks:
        rows = blocks[block.name]
        metric = primary_metric(rows)
        latency = batch_latency_metric(rows)
        base_ms = stats(rows, schema.BASELINE, latency)
        for method in block.methods:
            speed = (
                (1.0, 0.0, 1)
                if method == schema.BASELINE
                else stats(rows, method, schema.SPEEDUP_BSN)
            )
            table.append(
                {
                    "Block": block.name,
                    "Model Type": spec.labels[method],
                    "Size (MB)": cell(*stats(rows, method, schema.SIZE_MB), ".2f"),
                    metric_header(metric): cell(*stats(rows, method, metric), ".4f"),
                    "Inference (ms)": cell(*_derived_ms(base_ms, speed), ".2f"),
                    "Speedup": cell(*speed, ".2f") + "x",
                    "latency metric": latency,
                }
            )
    return pd.DataFrame(table)


def _derived_ms(base: tuple, speed: tuple) -> tuple[float, float, int]:
    """The FP32 run's own batch time divided by the method's side-by-side speedup (times from
    different runs are never compared directly); the std follows the speedup's."""
    (base_ms, _, base_n), (ratio, ratio_std, n) = base, speed
    if not (base_n and n) or np.isnan(ratio) or ratio <= 0:
        return float("nan"), float("nan"), 0
    return base_ms / ratio, base_ms * ratio_std / ratio**2, n


def quant_summary_text(spec, table: pd.DataFrame) -> str:
    """The seed's fixed-width block, once per model family, then the published one."""
    parts = []
    for name, rows in table.groupby("Block", sort=False):
        metric = "AUROC" if "AUROC" in rows and rows["AUROC"].notna().all() else "Accuracy"
        title = f"QUANTIZATION COMPARISON SUMMARY ({name}, ours; {rows['latency metric'].iloc[0]})"
        lines = [
            _summary_row(
                r["Model Type"], r["Size (MB)"], r[metric], r["Inference (ms)"], r["Speedup"]
            )
            for _, r in rows.iterrows()
        ]
        parts.append(_summary_block(title, metric, lines))
    for name, published in (spec.get("published") or {}).items():
        lines = [
            _summary_row(
                spec.labels[m],
                f"{v['size/mb']:.2f}",
                f"{v['metric']:.4f}",
                f"{v['ms']:.2f}",
                f"{v['speedup']:.2f}x",
            )
            for m, v in published.items()
        ]
        parts.append(
            _summary_block(
                f"QUANTIZATION COMPARISON SUMMARY ({name}, published)", "Accuracy", lines
            )
        )
    return "\n\n".join(parts)


def _summary_block(title: str, metric: str, lines: list[str]) -> str:
    header = f"{'Model Type':<26}{'Size (MB)':<16}{metric:<16}{'Inference (ms)':<16}Speedup"
    return "\n".join([RULE, title, RULE, header, "-" * 80, *lines, RULE])


def _summary_row(label, size, metric, ms, speedup) -> str:
    return f"{label:<26}{size:<16}{metric:<16}{ms:<16}{speedup.removesuffix('x'):<10}x"


def dyad_folds(spec, blocks: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Vehicle AUROC per method: mean ± std over folds, n, and each fold's value."""
    rows = blocks[spec.blocks[0].name]
    table = []
    for method in spec.blocks[0].methods:
        mine = rows[rows[_METHOD] == method].sort_values(_FOLD)
        mean, std, n = stats(rows, method, AUROC)
        entry = {
            "Method": spec.labels[method],
            "AUROC (%)": cell(100 * mean, 100 * std, n, ".1f"),
            "n folds": n,
        }
        for _, run in mine.iterrows():
            entry[f"fold {run[_FOLD]}"] = f"{run[col.metric(AUROC)]:.3f}"
        table.append(entry)
    return pd.DataFrame(table)


def _n(rows: pd.DataFrame, method: str) -> int:
    return int((rows[_METHOD] == method).sum())


LAYOUTS = {"dyad_dynamic": dyad_dynamic, "quant_summary": quant_summary, "dyad_folds": dyad_folds}


def markdown(table: pd.DataFrame) -> str:
    """The table in Markdown: columns whose first cell is not a number are text (left)."""
    first = table.iloc[0] if len(table) else pd.Series(dtype=object)
    text = [c for c in table.columns if not re.match(r"^[-+\d.—]", str(first.get(c, "")))]
    return markdown_table(table, text)
