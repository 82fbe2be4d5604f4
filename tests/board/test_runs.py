"""Loading runs from MLflow: ``python -m pytest tests/board/test_runs.py``."""

import gc
import weakref

import pandas as pd
import pytest

from src.board.runs import load_runs, runs_to_frame
from src.board.variants import board_params
from src.core.errors import UserError
from src.tracking.store import RunStore


def test_one_row_per_run_with_flattened_columns(demo):
    store, ids = demo
    runs = load_runs(store.uri, experiment="battery")
    assert len(runs) == 3 * 4 + 2 + 1  # 4 methods x 3 folds, 2 FAILED qat, the sweep parent
    row = runs.set_index("run_id").loc[ids.runs["dynamic"][1]]
    assert row["status"] == "FINISHED" and row["experiment"] == "battery"
    assert row["tags.method"] == "dynamic" and row["tags.fold"] == "1"
    assert row["params.method.dtype"] == "int8"
    assert row["metrics.test/auroc"] == pytest.approx(0.79)
    assert sorted(runs["status"].unique()) == ["FAILED", "FINISHED"]


def test_tag_param_and_list_filters(demo):
    store, _ = demo
    digits = load_runs(store.uri, filters={"data": "digits"})
    assert set(digits["tags.data"]) == {"digits"} and len(digits) == 4
    one = load_runs(store.uri, filters={"data": "battery", "method": "static", "fold": 2})
    assert len(one) == 2  # the static run, plus the baseline it names
    assert list(one["selected_by"]) == ["filter", "baseline_run_id"]
    alone = load_runs(store.uri, filters={"method": "static"}, include_baselines=False)
    assert set(alone["tags.method"]) == {"static"} and len(alone) == 3
    both = load_runs(store.uri, filters={"method": ["static", "fp16"]}, include_baselines=False)
    assert set(both["tags.method"]) == {"static", "fp16"} and len(both) == 6
    by_param = load_runs(store.uri, filters={"params.method.observer": "histogram"})
    assert set(by_param["tags.method"]) == {"static", "baseline"}
    assert load_runs(store.uri, filters={"data_variant": "brand1"}).empty
    assert len(load_runs(store.uri, filters={"data_variant": "brand3", "method": "baseline"})) == 3


def test_sweep_children_come_with_their_baselines(demo):
    store, ids = demo
    assert RunStore.open(store.uri).sweep_parent("sweep-1") == ids.sweep_parent
    runs = load_runs(store.uri, parent_run_id=ids.sweep_parent)
    chosen = runs[runs["selected_by"] == "filter"]
    assert set(chosen["run_id"]) == set(ids.runs["dynamic"] + ids.runs["static"])
    added = runs[runs["selected_by"] == "baseline_run_id"]
    assert set(added["run_id"]) == set(ids.baselines)


def test_unknown_sweep_and_experiment_are_user_errors(demo):
    store, _ = demo
    with pytest.raises(UserError, match="sweep_id=nope"):
        RunStore.open(store.uri).sweep_parent("nope")
    with pytest.raises(UserError, match="choose from"):
        load_runs(store.uri, experiment="cifar10")


def test_missing_store_is_an_error_and_is_not_created(tmp_path):
    with pytest.raises(UserError, match="no MLflow store"):
        load_runs(f"sqlite:///{tmp_path}/absent/mlflow.db")
    assert not (tmp_path / "absent").exists()


def test_pages_give_the_same_frame_and_are_let_go(demo, monkeypatch):
    """A page of MLflow runs is dropped once it is rows: memory grows with rows, not runs."""
    store, _ = demo
    whole = load_runs(store.uri, experiment="battery")
    monkeypatch.setattr("src.board.runs._PAGE", 2)
    paged = load_runs(store.uri, experiment="battery")
    pd.testing.assert_frame_equal(
        whole.sort_values("run_id").reset_index(drop=True)[sorted(whole.columns)],
        paged.sort_values("run_id").reset_index(drop=True)[sorted(paged.columns)],
    )
    reader, alive = RunStore.open(store.uri), []

    def watched_pages():
        for page in reader.pages([], "battery", page_size=2):
            gc.collect()
            alive.append(sum(ref() is not None for ref in refs))
            refs[:] = [*refs, *(weakref.ref(run) for run in page)]
            yield page

    refs: list = []
    frame = runs_to_frame(watched_pages(), reader)
    assert len(frame) == len(whole) and max(alive) <= 2  # at most the page before this one


def test_params_are_kept_by_prefix_and_filter(demo):
    store, _ = demo
    runs = load_runs(store.uri, filters={"params.data.fold": "1"}, params=board_params())
    params = {c for c in runs if c.startswith("params.")}
    assert params and all(
        c.startswith(("params.method.", "params.model.")) or c == "params.data.fold" for c in params
    )
    assert "params.method.dtype" in params and "params.data.fold" in params
    assert set(runs["params.data.fold"].dropna()) == {"1"}
