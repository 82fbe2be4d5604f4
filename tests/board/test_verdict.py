"""Verdicts on hand-built stores whose answer is known: ``pytest tests/board/test_verdict.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.board import PairedTables, build_board, load_runs


def _units(baseline, variant, labels, prefix="car"):
    return pd.DataFrame(
        {
            "unit": [f"{prefix}{i}" for i in range(len(labels))],
            "label": labels,
            "baseline": baseline,
            "variant": variant,
        }
    )


def _fleet(n, faulty, seed):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) < faulty).astype(int)
    return labels, 1.5 * labels + rng.normal(0, 1, n), rng


def _board(store, **options):
    return build_board(load_runs(store.uri), tables=PairedTables(store.uri), **options)


def _method(store, base, method, units, speed=(1.0, 0.9, 1.1), size=1.0, fold=0):
    speedup, low, high = speed
    metrics = {
        "test/auroc": 0.5,  # not what decides: the paired table does
        "latency/speedup_bs1": speedup,
        "latency/speedup_bs1_ci_low": low,
        "latency/speedup_bs1_ci_high": high,
        "size/ratio": size,
    }
    return store.run(method=method, fold=fold, baseline_run_id=base, metrics=metrics, units=units)


def test_identical_scores_are_identical_never_non_inferior(store):
    # No faulty/normal pair changes order: the [0, 0] interval shows no variation, not its
    # absence, and the verdict says what it cannot show (audit D1).
    labels, scores, _ = _fleet(60, 20, 0)
    base = store.run(metrics={"test/auroc": 0.8})
    _method(store, base, "fp16", _units(scores, scores, labels), speed=(2.0, 1.8, 2.2), size=0.5)
    rows = _board(store).rows.set_index("variant")
    assert rows.loc["fp16", "verdict"] == "identical on 60 units"
    assert rows.loc["fp16", ["pairs worse", "pairs better", "pairs"]].tolist() == [0, 0, 800]
    assert rows.loc["fp16", "rank"] == 2 and not rows.loc["fp16", "pareto"]  # proved nothing
    assert rows.loc["fp16", "speed"] == "faster"
    assert rows.loc["fp16", "reason"] == (
        "identical on 60 units (0/800 pairs reordered; no interval possible; up to 17% of the 20"
        " faulty units could be affected unseen), 2x faster at bs1, 0.5x size"
    )


def test_a_superior_variant_and_a_non_inferior_one_that_is_still_worse(store):
    labels, scores, rng = _fleet(400, 200, 5)
    better = scores + 0.8 * labels  # separates the classes further
    worse = scores - 0.15 * labels  # every faulty unit a little lower: a small, certain loss
    base = store.run(metrics={"test/auroc": 0.8})
    _method(store, base, "qat", _units(scores, better, labels))
    _method(store, base, "static", _units(scores, worse, labels))
    rows = _board(store, margin=0.05).rows.set_index("variant")
    assert rows.loc["qat", "verdict"] == "superior" and rows.loc["qat", "delta:ci_low"] > 0
    low, high = rows.loc["static", ["delta:ci_low", "delta:ci_high"]]
    assert rows.loc["static", "verdict"] == "non-inferior but worse" and -0.05 < low < high < 0
    assert "DeLong-t" in rows.loc["static", "interval"] and rows.loc["static", "p_ni"] < 0.025


def test_every_variant_on_one_baseline_counts_in_the_family(store):
    labels, scores, rng = _fleet(60, 20, 6)
    base = store.run(metrics={"test/auroc": 0.8})
    for name, noise in (("qat", 0.05), ("static", 0.45)):
        _method(store, base, name, _units(scores, scores + rng.normal(0, noise, 60), labels))
    board = _board(store, margin=0.1)
    rows = board.rows.set_index("variant")
    assert rows.loc[["qat", "static"], "k judged"].tolist() == [2, 2] and board.judgement.k == 2
    assert rows["verdict (Holm)"].notna().all()


def test_a_variant_that_lost_the_ranking_is_inferior(store):
    labels, scores, rng = _fleet(80, 30, 1)
    base = store.run(metrics={"test/auroc": 0.8})
    _method(store, base, "static", _units(scores, rng.permutation(scores), labels))
    rows = _board(store).rows.set_index("variant")
    assert rows.loc["static", "verdict"] == "inferior"
    assert rows.loc["static", "delta:ci_high"] < -0.02 and rows.loc["static", "rank"] == 2
    assert not rows.loc["static", "pareto"]


def test_few_vehicles_and_a_small_difference_are_inconclusive_and_never_outrank(store):
    labels, scores, rng = _fleet(12, 5, 2)
    noisy = scores + rng.normal(0, 0.6, 12)
    base = store.run(metrics={"test/auroc": 0.8})
    _method(store, base, "qat", _units(scores, noisy, labels), speed=(0.5, 0.4, 0.6), size=0.3)
    board = _board(store)
    rows = board.rows.set_index("variant")
    low, high = rows.loc["qat", ["delta:ci_low", "delta:ci_high"]]
    assert rows.loc["qat", "verdict"] == "inconclusive" and low < -0.02 < high
    assert rows.loc["qat", "rank"] == 2  # below its baseline, whatever its raw difference
    assert rows.loc["qat", "speed"] == "slower"
    expected = ", 2x slower at bs1, 0.3x size, smaller but not faster, power: "
    assert expected in rows.loc["qat", "reason"]
    assert board.margin == 0.02 and "DeLong-t" in board.judgement.methods[0]


def test_folds_are_recombined_over_shared_vehicles_and_the_margin_is_configurable(store):
    labels, scores, rng = _fleet(40, 15, 3)
    variant = scores + rng.normal(0, 0.15, 40)
    for fold in (0, 1):  # the same vehicles in both folds' test sets
        base = store.run(fold=fold, metrics={"test/auroc": 0.8})
        _method(store, base, "dynamic", _units(scores, variant, labels), fold=fold)
    rows = _board(store).rows.set_index("variant")
    assert rows.loc["dynamic", "n"] == 2 and "jointly across 2 cells" in _board(store).resampled
    wide = _board(store, margin=0.5).rows.set_index("variant")
    narrow = _board(store, margin=0.0).rows.set_index("variant")
    assert wide.loc["dynamic", "verdict"] == "non-inferior"
    assert narrow.loc["dynamic", "verdict"] in ("inconclusive", "inferior")


@pytest.mark.parametrize(
    ("speeds", "expected"),
    [([(2.0, 1.5, 2.5)], "faster"), ([(0.5, 0.4, 0.6)], "slower"), ([(1.05, 0.95, 1.2)], "same")],
)
def test_speed_verdict_comes_from_the_side_by_side_interval(store, speeds, expected):
    labels, scores, _ = _fleet(30, 10, 4)
    base = store.run(metrics={"test/auroc": 0.8})
    _method(store, base, "half", _units(scores, scores, labels), speed=speeds[0])
    assert _board(store).rows.set_index("variant").loc["half", "speed"] == expected
