"""What makes two runs the same leaderboard row: data set (source and variant), model, variant.

A variant is the method with its settings (every ``method.*`` param except ``name`` and
``baseline_run_id``). Labels stay short: a setting, or a ``model.*`` param, is named in the label
only when it differs between the selected runs of that method (or model); the full settings are
kept in ``settings`` and the row identity always uses all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from src.board import columns as col

# What makes a row: one data set, model (with its settings) and variant (with its settings).
IDENTITY = (
    col.DATA,
    col.DATA_VARIANT,
    col.DATA_FINGERPRINT,
    col.MODEL,
    col.VARIANT,
    col.SETTINGS,
    col.CONTEXT,
)
_METHOD, _MODEL = col.param("method."), col.param("model.")  # the params of those groups
_NOT_SETTINGS = (col.param("method.name"), col.param("method.baseline_run_id"))
_MISSING = ("", "None", "null", "nan")


def board_params(split_by: Sequence[str] = ()) -> tuple[str, ...]:
    """The param name prefixes :func:`label_runs` reads: all the leaderboard loads of params."""
    return ("method.", "model.", *split_by)


def label_runs(runs: pd.DataFrame, split_by: Sequence[str] = ()) -> pd.DataFrame:
    """Add the identity columns of :data:`IDENTITY` plus ``method``, ``fold`` and ``seed``.

    Args:
        runs: Output of :func:`src.board.runs.load_runs`.
        split_by: Extra params (``trainer.max_epochs``) that separate otherwise equal rows.

    Returns:
        A copy of ``runs`` with string columns ``data``, ``data_variant`` (``""`` when the data
        has one set), ``task``, ``model``, ``method``, ``variant``, ``settings``, ``context``,
        ``fold``, ``seed``.
    """
    out = runs.copy()
    for name in col.LABELS:
        out[name] = _text(out, col.tag(name))
    setting_columns = [c for c in out if c.startswith(_METHOD) and c not in _NOT_SETTINGS]
    out[col.SETTINGS] = _joined(out, setting_columns)
    out[col.VARIANT] = _short_labels(out, col.METHOD, setting_columns)
    context_columns = [c for c in out if c.startswith(_MODEL)]
    context_columns += [col.param(key) for key in split_by]
    out[col.CONTEXT] = _joined(out, context_columns)
    out[col.MODEL] = _short_labels(out, col.MODEL, context_columns)
    return out


def newest_per_cell(labelled: pd.DataFrame) -> pd.DataFrame:
    """Keep the newest run of each row identity, fold and seed: a re-run replaces, never adds
    to, the count of an earlier one."""
    ordered = labelled.sort_values(col.START_TIME, kind="stable")
    return ordered.drop_duplicates([*IDENTITY, col.FOLD, col.SEED], keep="last").sort_index()


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str)


def _joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``key=value, ...`` of the non-missing values, keys without their ``params.<group>.``."""
    if frame.empty:
        return pd.Series("", index=frame.index, dtype=object)
    parts = []
    for _, row in frame[sorted(columns)].iterrows():
        items = [(c, row[c]) for c in sorted(columns)]
        parts.append(", ".join(f"{_key(c)}={v}" for c, v in items if str(v) not in _MISSING))
    return pd.Series(parts, index=frame.index, dtype=object)


def _short_labels(frame: pd.DataFrame, name: str, columns: list[str]) -> pd.Series:
    """``name`` plus the ``columns`` whose values differ among the runs of that name."""
    labels = frame[name].copy()
    for value, group in frame.groupby(name, sort=False):
        differing = [c for c in columns if _text(group, c).nunique() > 1]
        if differing:
            detail = _joined(group, differing)
            labels[group.index] = [f"{value}({d})" if d else str(value) for d in detail]
    return labels


def _key(column: str) -> str:
    """``params.method.observer`` -> ``observer``; ``params.trainer.max_epochs`` keeps the
    group for a ``split_by`` key outside ``method``/``model``."""
    for group in (_METHOD, _MODEL):
        if column.startswith(group):
            return column.removeprefix(group)
    return column.removeprefix(col.PARAMS)
