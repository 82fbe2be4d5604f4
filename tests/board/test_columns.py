"""The board's column declarations against the frames it builds:
``python -m pytest tests/board/test_columns.py``."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from src.board import PairedTables, build_board, load_runs
from src.board import columns as col
from src.core import schema
from src.core.paths import ROOT

# Modules that read or write board frames: none spells a column name; columns.py declares them.
READERS = sorted((ROOT / "src" / "board").glob("*.py")) + [
    ROOT / "src" / "search" / "scoring.py",
    ROOT / "src" / "reproduce" / "tables.py",
    ROOT / "src" / "reproduce" / "app.py",
    ROOT / "src" / "leaderboard.py",
]
# How a spelled-out column (or interval, schema.interval's) starts, and what it contains.
PREFIXES = ("tags.", "params.", "metrics.", "vs_baseline/")
INSIDE = ("delta:", ":mean", ":std", ":n", "_ci_low", "_ci_high")


def _run_labels() -> set[str]:
    """What ``label_runs`` (and ``speed_from_pass``) add to the run frame."""
    return {*col.LABELS, col.VARIANT, col.SETTINGS, col.CONTEXT, col.SPEED_SOURCE}


def _ratios() -> set[str]:
    return {col.VS_SIZE, col.VS_SPEEDUP_BS1, col.VS_SPEEDUP_BSN, col.VS_DELTA}


def test_per_run_is_the_run_frame_plus_the_declared_labels_and_ratios(demo):
    store, _ = demo
    runs = load_runs(store.uri, filters={"data": "battery"})
    board = build_board(runs)
    assert set(col.RUN_COLUMNS) <= set(runs.columns)
    prefixes = (col.TAGS, col.PARAMS, col.METRICS)
    assert all(c in col.RUN_COLUMNS or c.startswith(prefixes) for c in runs.columns)
    added = set(board.per_run.columns) - set(runs.columns)
    assert added == _run_labels() | {col.metric(name) for name in _ratios()}
    assert {col.tag(name) for name in col.LABELS} <= set(runs.columns)


def test_rows_carry_exactly_the_declared_columns(demo):
    store, _ = demo
    board = build_board(load_runs(store.uri, filters={"data": "battery"}))
    assert set(board.rows.columns) == _expected_rows(board.per_run, verdicts=True)
    assert board.rows.columns[0] == col.RANK
    assert board.runtimes.empty and list(board.runtimes.columns) == list(col.RUNTIME_COLUMNS)


def _expected_rows(per_run: pd.DataFrame, verdicts: bool) -> set[str]:
    """Labels, counts, a mean, std and n of every board metric, then the verdict and the rank."""
    names = {col.metric_name(c) for c in per_run} - {None}
    board_metrics = {n for n in names if n.startswith(schema.BOARD_AREAS)}
    assert _ratios() <= board_metrics  # the ratios are aggregated like any metric
    stats = {col.stat(m, s) for m in board_metrics for s in col.STATS}
    stats |= {col.stat(m, col.MIN) for m in board_metrics if m.endswith(schema.CI_LOW)}
    stats |= {col.stat(m, col.MAX) for m in board_metrics if m.endswith(schema.CI_HIGH)}
    identity = {col.DATA, col.DATA_VARIANT, col.DATA_FINGERPRINT, col.MODEL, col.VARIANT}
    identity |= {col.SETTINGS, col.CONTEXT, col.TASK, col.METHOD}
    judged = {*col.JUDGED, col.SPEED, col.REASON} if verdicts else set()
    ranked = {col.SCORE, col.RANK, col.PARETO, col.stat(col.VS_MS_BS1)}
    return identity | set(col.ROW_COUNTS) | stats | judged | ranked


def test_a_paired_board_with_runtimes_round_trips(store):
    """Paired tables (the recombined interval) and a second runtime: every frame's columns."""
    rng = np.random.default_rng(0)
    labels = (np.arange(30) < 10).astype(int)
    scores = labels + rng.normal(0, 1, 30)
    variant = scores + rng.normal(0, 0.1, 30)
    units = pd.DataFrame({"unit": range(30), "label": labels, "baseline": scores})
    units["variant"] = variant
    onnx = schema.runtime_metric("onnxruntime", schema.LATENCY_BS1)
    base = store.run(metrics={"test/auroc": 0.8, schema.LATENCY_BS1: 2.0, onnx: 1.0})
    metrics = {"test/auroc": 0.79, schema.SPEEDUP_BS1: 2.0, schema.SIZE_RATIO: 0.3, onnx: 0.5}
    metrics[f"{schema.runtime_speedup('onnxruntime')}_bs1"] = 4.0
    store.run(method="dynamic", baseline_run_id=base, metrics=metrics, units=units)
    board = build_board(load_runs(store.uri), tables=PairedTables(store.uri), n_boot=200)
    assert set(board.rows.columns) == _expected_rows(board.per_run, verdicts=True)
    assert board.rows[col.DELTA_CI_LOW].notna().tolist() == [False, True]  # from the units
    assert list(board.runtimes.columns) == list(col.RUNTIME_COLUMNS)
    assert board.runtimes[col.RUNTIME].tolist() == ["eager", "onnxruntime"] * 2


def test_a_board_without_verdicts_has_no_verdict_columns(demo):
    store, _ = demo
    board = build_board(load_runs(store.uri, filters={"data": "battery"}), "size/mb")
    assert board.margin is None
    assert set(board.rows.columns) == _expected_rows(board.per_run, verdicts=False)


def test_names_are_built_from_the_schema_and_spelled_as_the_files_show_them():
    # MLflow's search_runs names, and the published CSV's: a change here changes every board.
    assert col.tag(schema.METHOD) == "tags.method" and col.param("seed") == "params.seed"
    assert col.metric(schema.SIZE_MB) == "metrics.size/mb"
    assert col.metric_name("metrics.test/auroc") == "test/auroc"
    assert col.metric_name(col.tag(schema.METHOD)) is None
    assert col.stat("test/auroc") == "test/auroc:mean" and col.stat("x", col.STD) == "x:std"
    assert col.stat(col.VS_SPEEDUP_BS1) == "vs_baseline/speedup_bs1:mean"
    assert col.DELTA_INTERVAL == ("delta:estimate", "delta:ci_low", "delta:ci_high")
    assert col.VS_BASELINE in schema.BOARD_AREAS  # the ratios are board metrics
    assert col.LABELS == (*schema.IDENTITY_TAGS, schema.DATA_FINGERPRINT)
    assert (col.METHOD, col.FOLD, col.MODEL) == (schema.METHOD, schema.FOLD, schema.MODEL)


@pytest.mark.parametrize("path", READERS, ids=lambda p: p.name)
def test_only_columns_py_spells_a_column_name(path):
    if path.name == "columns.py":
        return
    found = [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in _code_strings(ast.parse(path.read_text()))
        if node.value.startswith(PREFIXES) or any(part in node.value for part in INSIDE)
    ]
    assert not found, f"spell these with src.board.columns (or schema.interval): {found}"


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants (f-string parts included) outside docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]
