"""Rows, numbers and ratios of the board: ``python -m pytest tests/board/test_aggregate.py``."""

import numpy as np
import pandas as pd
import pytest

from src.board.aggregate import build_board, prepare_runs
from src.board.runs import load_runs
from src.core.errors import UserError
from tests.board.fakes import BATTERY, DIGITS


def board_rows(runs, **options) -> pd.DataFrame:
    return build_board(runs, **options).rows


@pytest.fixture(scope="module")
def battery(demo) -> pd.DataFrame:
    store, _ = demo
    return board_rows(load_runs(store.uri, filters={"data": "battery"})).set_index("variant")


def test_numbers_are_the_logged_metrics_mean_std_n(battery):
    for method, values in BATTERY.items():
        variant = "dynamic" if method == "dynamic" else method
        row = battery.loc[variant]
        assert row["n"] == 3 and row["folds"] == "0,1,2" and row["seeds"] == "0"
        for metric, logged in values.items():
            assert row[f"{metric}:mean"] == pytest.approx(np.mean(logged)), (method, metric)
            assert row[f"{metric}:std"] == pytest.approx(np.std(logged, ddof=1)), (method, metric)
            assert row[f"{metric}:n"] == 3


def test_ratios_against_each_runs_own_baseline(battery):
    base = battery.loc["baseline"]
    for name, at_baseline in (("size_ratio", 1), ("speedup_bs1", 1), ("delta", 0)):
        assert base[f"vs_baseline/{name}:mean"] == at_baseline
    dynamic = battery.loc["dynamic"]
    assert dynamic["vs_baseline/size_ratio:mean"] == pytest.approx(0.3)  # logged size/ratio
    assert dynamic["vs_baseline/speedup_bs1:mean"] == pytest.approx(2.1)  # logged, side by side
    assert dynamic["vs_baseline/speedup_bsN:mean"] == pytest.approx(1.6)
    assert dynamic["vs_baseline/delta:mean"] == pytest.approx(0.84 - 0.85)
    # fp16 logged no size/ratio: size/mb over its baseline run's size/mb
    assert battery.loc["fp16", "vs_baseline/size_ratio:mean"] == pytest.approx(0.5)


def test_rank_by_primary_metric_and_failed_runs_left_out(battery):
    assert list(battery.sort_values("rank").index) == ["baseline", "dynamic", "fp16", "static"]
    assert list(battery["rank"].sort_values()) == [1, 2, 3, 4]
    assert "qat" not in battery.index  # only FAILED runs
    # No paired tables in the demo store: no verdicts, so variants rank below their baseline
    # by score and only the baseline is on the front (taken among non-inferior rows).
    assert set(battery.loc[battery.index != "baseline", "verdict"]) == {"no interval"}
    assert battery["pareto"].to_dict() == {
        "baseline": True,
        "dynamic": False,
        "fp16": False,
        "static": False,
    }


def test_lower_is_better_reverses_the_rank(demo):
    store, _ = demo
    runs = load_runs(store.uri, filters={"data": "battery"})
    board = board_rows(runs, metric="latency/ms_p50_bs1", higher_is_better=False)
    assert list(board["variant"]) == ["static", "dynamic", "fp16", "baseline"]


def test_classification_ranks_by_accuracy_over_seeds(demo):
    store, _ = demo
    board = board_rows(load_runs(store.uri, filters={"data": "digits"})).set_index("variant")
    assert board.loc["baseline", "rank"] == 1 and board.loc["baseline", "seeds"] == "0,1"
    acc = DIGITS["dynamic"]["test/accuracy"]
    assert board.loc["dynamic", "test/accuracy:mean"] == pytest.approx(np.mean(acc))
    assert board.loc["dynamic", "data_variant"] == "" and board.loc["dynamic", "folds"] == "none"


def test_mixed_data_needs_a_metric(demo):
    store, _ = demo
    runs = load_runs(store.uri)
    with pytest.raises(UserError, match=r"different metrics .*\(data=NAME\) or give metric=NAME"):
        board_rows(runs)
    board = board_rows(runs, metric="size/mb")  # lower is better, by its area
    assert set(board["data"]) == {"battery", "digits"}
    assert board.groupby("data")["rank"].min().to_dict() == {"battery": 1, "digits": 1}
    with pytest.raises(UserError, match="was not logged"):
        board_rows(runs, metric="test/nope")


def test_settings_split_variants_and_label_only_what_differs(store):
    base = store.run(metrics={"test/auroc": 0.9})
    for observer, auroc in (("minmax", 0.7), ("histogram", 0.8)):
        store.run(
            method="static",
            baseline_run_id=base,
            settings={"observer": observer, "per_channel": True},
            metrics={"test/auroc": auroc},
        )
    board = board_rows(load_runs(store.uri)).set_index("variant")
    assert (
        board.loc["static(observer=histogram)", "settings"]
        == "observer=histogram, per_channel=True"
    )
    assert board.loc["static(observer=minmax)", "test/auroc:mean"] == pytest.approx(0.7)
    assert list(board["n"]) == [1, 1, 1]


def test_newest_run_per_fold_replaces_older_ones(store):
    store.run(fold=0, metrics={"test/auroc": 0.5})  # older re-run, superseded
    store.run(fold=0, metrics={"test/auroc": 0.9})
    store.run(fold=1, metrics={"test/auroc": 0.7})
    runs = load_runs(store.uri)
    assert board_rows(runs)["test/auroc:mean"].item() == pytest.approx(0.8)
    assert board_rows(runs, dedupe=False)["n"].item() == 3
    assert len(prepare_runs(runs)) == 2


def test_model_settings_and_split_by_separate_rows(store):
    for fold, (hidden, epochs) in enumerate(((64, 5), (128, 5), (128, 3))):
        store.run(
            fold=fold,
            params={"model.hidden_size": hidden, "trainer.max_epochs": epochs},
            metrics={"test/auroc": hidden / 1000 + epochs / 100},
        )
    runs = load_runs(store.uri)
    assert sorted(board_rows(runs)["model"]) == ["dyad(hidden_size=128)", "dyad(hidden_size=64)"]
    assert set(board_rows(runs)["n"]) == {1, 2}
    split = board_rows(runs, split_by=["trainer.max_epochs"])
    assert len(split) == 3 and set(split["n"]) == {1}


def test_no_finished_run_is_a_user_error(store):
    store.run(status="FAILED")
    with pytest.raises(UserError, match="no FINISHED runs"):
        board_rows(load_runs(store.uri))


def test_baseline_with_or_without_method_params_is_one_row(store):
    auroc = {"test/auroc": 0.9}
    store.run(
        fold=0, metrics=auroc, params={"method.name": "baseline", "method.baseline_run_id": None}
    )
    # params outside model.* and method.* (distillation's default student) do not split rows
    store.run(fold=1, metrics=auroc, params={"student.hidden_size": 16})
    store.run(fold=2, metrics=auroc, params={"student.hidden_size": 8})
    board = board_rows(load_runs(store.uri))
    assert board[["model", "variant", "n"]].values.tolist() == [["dyad", "baseline", 3]]


def test_direction_and_headline_come_from_the_runs_metric_specs(demo):
    store, _ = demo
    runs = load_runs(store.uri, filters={"data": "battery"})
    board = build_board(runs, metric="test/recall")
    assert board.higher_is_better
    assert board.headline == ["test/auroc", "test/false_alarm_rate", "test/f1"]  # anomaly's
    lower = build_board(runs, metric="latency/ms_p50_bs1")  # measurement area: lower is better
    assert not lower.higher_is_better
    assert list(lower.rows["variant"]) == ["static", "dynamic", "fp16", "baseline"]
    default = build_board(runs)
    assert default.metric == "test/auroc" and default.higher_is_better


def test_a_spec_that_says_lower_is_better_ranks_ascending(store):
    base = store.run(metrics={"test/auroc": 0.9, "test/false_alarm_rate": 0.3})
    store.run(
        method="static",
        baseline_run_id=base,
        metrics={"test/auroc": 0.8, "test/false_alarm_rate": 0.1},
    )
    board = build_board(load_runs(store.uri), metric="test/false_alarm_rate")
    assert board.higher_is_better is False
    assert list(board.rows["variant"]) == ["static", "baseline"]


def test_runs_without_task_tags_need_the_metric_named(store):
    store.run(metrics={"test/auroc": 0.9}, tags={"primary_metric": "", "metric_specs": ""})
    runs = load_runs(store.uri).drop(columns=["tags.primary_metric", "tags.metric_specs"])
    with pytest.raises(UserError, match="name no metric"):
        build_board(runs)
    with pytest.raises(UserError, match="higher_is_better=true"):
        build_board(runs, metric="test/auroc")
    assert build_board(runs, metric="test/auroc", higher_is_better=True).rows["n"].item() == 1


def test_float_noise_is_a_tie_not_a_rank(store):
    base = store.run(
        metrics={"test/auroc": 0.7083333333333333, "latency/ms_p50_bs1": 1.0, "size/mb": 1.0}
    )
    store.run(
        method="static",
        baseline_run_id=base,
        metrics={
            "test/auroc": 0.7083333333333332,
            "delta/auroc": -1.1e-16,
            "delta/auroc_ci_low": -0.01,
            "delta/auroc_ci_high": 0.01,
            "latency/speedup_bs1": 1.0,
            "size/ratio": 1.0,
        },
    )
    rows = build_board(load_runs(store.uri)).rows.set_index("variant")
    assert rows.loc["baseline", "rank"] == rows.loc["static", "rank"] == 1
    assert rows["pareto"].all()  # neither dominates the other by 1e-16


def test_runs_on_other_data_are_another_data_set_never_a_newer_rerun(store):
    store.run(fold=0, metrics={"test/auroc": 0.70}, data_fingerprint="real-release")
    store.run(fold=0, metrics={"test/auroc": 0.50}, data_fingerprint="other-folder")  # newer
    board = build_board(load_runs(store.uri))
    rows = board.rows.set_index("data_fingerprint")
    assert rows.loc["real-release", "test/auroc:mean"] == pytest.approx(0.70)
    assert rows.loc["other-folder", "test/auroc:mean"] == pytest.approx(0.50)
    assert list(board.rows["rank"]) == [1, 1]  # ranked within each data set
    from src.board.render import display_table

    shown = display_table(board.rows, board.metric)
    assert sorted(shown["data"]) == ["battery (brand3) [other-fo]", "battery (brand3) [real-rel]"]


def test_a_variant_is_ranked_against_its_baseline_on_the_folds_it_has(store):
    """The reviewer's case: the baseline over 3 folds, the variant over 1 (its weakest for the
    baseline). Its raw mean looks better; on its own fold it is worse than its baseline."""
    bases = [
        store.run(fold=f, metrics={"test/auroc": a, "latency/ms_p50_bs1": 10.0})
        for f, a in enumerate((0.9, 0.9, 0.6))
    ]
    store.run(
        method="static",
        fold=2,
        baseline_run_id=bases[2],
        metrics={
            "test/auroc": 0.65,
            "delta/auroc": 0.05,  # better on fold 2
            "delta/auroc_ci_low": 0.02,
            "delta/auroc_ci_high": 0.08,
            "latency/speedup_bs1": 2.0,
            "size/ratio": 0.3,
        },
    )
    store.run(
        method="dynamic",
        fold=0,
        baseline_run_id=bases[0],
        metrics={
            "test/auroc": 0.85,
            "delta/auroc": -0.05,  # worse on fold 0
            "delta/auroc_ci_low": -0.09,
            "delta/auroc_ci_high": -0.03,
            "latency/speedup_bs1": 1.5,
            "size/ratio": 0.3,
        },
    )
    rows = build_board(load_runs(store.uri)).rows.set_index("variant")
    assert rows.loc["dynamic", "test/auroc:mean"] > rows.loc["baseline", "test/auroc:mean"]
    assert rows.loc["dynamic", "score"] == pytest.approx(0.8 - 0.05)  # baseline mean + paired
    assert rows.loc["static", "score"] == pytest.approx(0.8 + 0.05)
    assert list(rows.sort_values("rank").index) == ["static", "baseline", "dynamic"]
    assert rows.loc["static", "verdict"] == "superior"  # its whole interval above 0: first
    assert rows.loc["dynamic", "verdict"] == "inferior"
    # milliseconds come from the baseline's own time and the side-by-side speedup
    assert rows.loc["static", "vs_baseline/ms_p50_bs1:mean"] == pytest.approx(10.0 / 2.0)
