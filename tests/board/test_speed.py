"""Speed from a timing pass on the board: ``pytest tests/board/test_speed.py``."""

from __future__ import annotations

import pytest

from src.board import build_board, load_runs
from src.board.meta import measurement_notes
from src.board.speed import IN_RUN, PASS

PASS_TAGS = {
    "timing.run_id": "pass-1",
    "timing.processes": "5",
    "timing.rounds": "3",
    "timing.threads": "2",
}


def _variant(store, base, method, size, in_run, timed=None):
    """A method run whose in-run speedup is ``in_run``; ``timed``: the pass's, with interval."""
    metrics = {
        "test/auroc": 0.85,
        "delta/auroc": 0.0,
        "latency/speedup_bs1": in_run,
        "latency/speedup_bs1_ci_low": in_run * 0.98,
        "latency/speedup_bs1_ci_high": in_run * 1.02,
        "size/ratio": size,
    }
    tags = {}
    if timed is not None:
        metrics.update(
            {
                "timing/eager/speedup_bs1": timed,
                "timing/eager/speedup_bs1_ci_low": timed * 0.9,
                "timing/eager/speedup_bs1_ci_high": timed * 1.1,
                "timing/onnxruntime/vs_fp32_bs1": 0.5,
            }
        )
        tags = PASS_TAGS
    return store.run(method=method, baseline_run_id=base, metrics=metrics, tags=tags)


def _base(store, timed: bool):
    metrics = {"test/auroc": 0.85, "latency/ms_p50_bs1": 4.0, "size/mb": 1.0}
    return store.run(metrics=metrics, tags=PASS_TAGS if timed else {})


def test_a_timed_run_reads_its_speed_from_the_pass(store):
    base = _base(store, timed=True)
    _variant(store, base, "dynamic", 0.3, in_run=2.0, timed=0.95)
    board = build_board(load_runs(store.uri))
    per_run = board.per_run.set_index("method")
    assert per_run.loc["dynamic", "speed_source"] == PASS
    assert per_run.loc["dynamic", "metrics.latency/speedup_bs1"] == pytest.approx(0.95)
    assert per_run.loc["dynamic", "metrics.latency/speedup_bs1_ci_low"] == pytest.approx(0.855)
    assert per_run.loc["dynamic", "metrics.latency/onnxruntime/vs_fp32_bs1"] == 0.5
    assert per_run.loc["dynamic", "metrics.latency/eager/vs_fp32_bs1"] == pytest.approx(0.95)
    rows = board.rows.set_index("variant")
    assert rows.loc["dynamic", "speed"] == "same"  # the pass's interval holds 1; in-run said faster
    notes = " ".join(measurement_notes(board.per_run))
    assert "2 run(s) from a timing pass (5 fresh processes x 3 rounds, 2 threads" in notes
    assert IN_RUN not in notes and "never absolute times from different runs" in notes


def test_without_a_pass_speed_stays_in_its_process_and_off_the_front(store):
    base = _base(store, timed=False)
    _variant(store, base, "dynamic", 0.3, in_run=2.0)
    _variant(store, base, "static", 0.25, in_run=0.5)
    board = build_board(load_runs(store.uri))
    assert set(board.per_run["speed_source"]) == {IN_RUN}
    rows = board.rows.set_index("variant")
    assert rows.loc["dynamic", "speed"] == "faster"  # its own baseline, its own process
    notes = " ".join(measurement_notes(board.per_run))
    assert "3 run(s) within one process" in notes and "Pareto front is over size only" in notes
