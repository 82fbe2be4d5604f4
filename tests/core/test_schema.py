"""The run schema holds producers and consumers together: ``pytest tests/core/test_schema.py``.

A real tiny run (``src.train`` in process) and a fake run of the leaderboard tests
(``tests/board/fakes.py``) must carry the same keys: if training renamed a tag the board reads,
this fails instead of every board test passing on stale fakes.
"""

from __future__ import annotations

import pytest

from src.core import schema
from src.core.metrics import MetricSpec, specs_from_json, specs_to_json
from src.tracking.store import RunStore
from tests.board.fakes import new_store
from tests.conftest import FAST, train_runs

BOARD_READS = {  # tags the board, reproduce and the benchmarks read from every training run
    *schema.IDENTITY_TAGS,
    schema.PRIMARY_METRIC,
    schema.METRIC_SPECS,
    schema.BASELINE_KEY,
    schema.DATA_FINGERPRINT,
    *schema.SETUP_TAGS,
}


@pytest.fixture(scope="module")
def real(tiny_root, tmp_path_factory):
    """A baseline and a dynamic run of dyad_tiny, trained in process."""
    tmp = tmp_path_factory.mktemp("real")
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *FAST]
    train_runs(*common, "task.evaluation.n_boot=20", methods=["dynamic"], tmp=tmp)
    runs = RunStore.open(f"sqlite:///{tmp}/mlflow.db").search()
    return {r.data.tags[schema.METHOD]: r for r in runs if schema.METHOD in r.data.tags}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    store = new_store(tmp_path_factory.mktemp("fake"))
    base = store.run(model="dyad_tiny", metrics={"test/auroc": 0.5, "size/mb": 1.0})
    metrics = {"test/auroc": 0.5, "size/ratio": 0.3}
    store.run(
        method="dynamic",
        model="dyad_tiny",
        baseline_run_id=base,
        settings={"dtype": "int8"},
        metrics=metrics,
    )
    runs = RunStore.open(store.uri).search()
    return {r.data.tags[schema.METHOD]: r for r in runs}


@pytest.mark.parametrize("method", ["baseline", "dynamic"])
def test_a_fake_run_carries_only_keys_a_real_run_has(real, fake, method):
    real_tags, fake_tags = set(real[method].data.tags), set(fake[method].data.tags)
    assert BOARD_READS <= real_tags and BOARD_READS <= fake_tags
    assert fake_tags - {"mlflow.user"} <= real_tags  # the fakes invent no tag
    assert set(fake[method].data.params) <= set(real[method].data.params)
    assert set(fake[method].data.metrics) <= set(real[method].data.metrics)
    if method == "dynamic":
        assert schema.BASELINE_RUN_ID in real_tags & fake_tags


def test_real_and_fake_identity_values_agree(real, fake):
    for key in (*schema.IDENTITY_TAGS, schema.PRIMARY_METRIC):
        assert real["dynamic"].data.tags[key] == fake["dynamic"].data.tags[key], key
    real_specs = specs_from_json(real["dynamic"].data.tags[schema.METRIC_SPECS])
    assert real_specs == specs_from_json(fake["dynamic"].data.tags[schema.METRIC_SPECS])


def test_metric_specs_round_trip_and_bad_tags_give_none():
    specs = [MetricSpec("test/a", False, ".2f", headline=True), MetricSpec("test/b")]
    assert specs_from_json(specs_to_json(specs)) == specs
    assert specs_from_json("") == [] and specs_from_json("{oops") == []


def test_run_tags_never_let_extra_tags_override_identity():
    identity = schema.RunIdentity("dynamic", "dyad", "battery", "brand3", "anomaly", 0, "1")
    tags = schema.run_tags(
        identity,
        primary_metric="test/auroc",
        metric_specs=[],
        baseline_key="k",
        extra={"method": "spoofed", "brand": 3},
    )
    assert tags["method"] == "dynamic" and tags["brand"] == "3" and tags["fold"] == "1"
    assert schema.BASELINE_RUN_ID not in tags and schema.PARENT_RUN_ID not in tags
    assert schema.delta_of("test/auroc") == "delta/auroc"
    assert schema.flatten_params({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {
        "a.b": 1,
        "a.c.d": 2,
        "e": 3,
    }


def test_interval_and_tuning_names():
    assert schema.interval("delta/auroc") == ("delta/auroc_ci_low", "delta/auroc_ci_high")
    assert schema.interval(schema.SPEEDUP_BS1)[0] == "latency/speedup_bs1_ci_low"
    assert schema.tuning_of("test/auroc") == "tuning/auroc"
    assert schema.TUNING_LOSS.startswith(schema.TUNING)
