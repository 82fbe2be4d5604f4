"""Every method end to end, in process, as ``python -m src.train +method=M`` runs it:
``pytest tests/test_compress.py``."""

import json
import math

import pytest

from src.cli.specs import run_spec
from src.core import schema
from src.core.errors import ConfigError
from src.pipeline.artifact import load
from tests.conftest import FAST, compose_cfg, job_runs, train_runs
from tests.test_train import reload_and_rescore

METHODS = ["dynamic", "static", "qat", "fp16", "bf16"]
# alpha 0.2: the tiny fleet holds 5 normal cars out, too few for a finite threshold at 0.05
ANOMALY = ["task.evaluation.n_boot=50", "task.evaluation.alpha=0.2", *FAST]


def _by_method(tmp):
    client, runs = job_runs(tmp)
    assert {r.info.status for r in runs} == {"FINISHED"}
    return client, {r.data.tags["method"]: r for r in runs}


def _check_sweep(tmp, primary):
    client, runs = _by_method(tmp)
    assert sorted(runs) == sorted(["baseline", *METHODS])
    base_id = runs["baseline"].info.run_id
    for name in METHODS:
        metrics = runs[name].data.metrics
        assert runs[name].data.tags["baseline_run_id"] == base_id
        assert runs[name].data.tags[schema.INTERVAL_METHOD]  # which paired interval
        for key in (
            "size/mb",
            "size/mb_gzip",
            "size/ratio",
            "size/params",
            "size/nonzero",
            "latency/ms_p50_bs1",
            "latency/speedup_bs1",
            "latency/speedup_bsN",
            "quant/int8_fraction",
            f"delta/{primary}",
            f"delta/{primary}_ci_low",
            f"delta/{primary}_ci_high",
            f"delta/{primary}_p",
            "latency/speedup_bs1_ci_low",
            f"test/{primary}",
        ):
            assert key in metrics, (name, key)
        assert runs[name].data.tags["latency.threads"] == "2"
        _check_deltas(metrics, runs["baseline"].data.metrics, primary)
        _check_size_ratio(metrics, runs["baseline"].data.metrics)
    assert runs["static"].data.metrics["quant/int8_fraction"] == 1.0
    assert runs["fp16"].data.metrics["quant/int8_fraction"] == 0.0
    return client, runs


def _check_deltas(metrics: dict, baseline: dict, primary: str) -> None:
    """``delta/m == test/m - baseline/test/m`` for every test metric both models have, where
    ``baseline/test/m`` (logged on the method run) is the baseline run's own figure. The paired
    statistics of the primary metric (``Task.paired``) are no differences: an interval around
    ``delta/<primary>`` and a p-value."""
    ends = ("_ci_low", "_ci_high", *(f"_{key}" for key in schema.PAIRED_STATS))
    paired = [f"{primary}{end}" for end in ends]
    deltas = {k.removeprefix("delta/") for k in metrics if k.startswith("delta/")} - set(paired)
    both = {k.removeprefix("test/") for k in metrics if k.startswith("test/")}
    both &= {k.removeprefix("baseline/test/") for k in metrics if k.startswith("baseline/test/")}
    both -= set(paired)  # the paired interval replaces the difference of the two intervals
    both = {k for k in both if not k.endswith(ends[:2])}  # no interval's end has a difference
    assert deltas == both and primary in deltas, sorted(deltas ^ both)
    for m in deltas:
        reference = metrics[f"baseline/test/{m}"]
        assert _same(reference, baseline[f"test/{m}"]), m
        assert _same(metrics[f"delta/{m}"], metrics[f"test/{m}"] - reference), m
    low, high, p = (metrics[f"delta/{m}"] for m in paired[:3])
    assert low <= high and 0 <= p <= 1


def _check_size_ratio(metrics: dict, baseline: dict) -> None:
    """``size/ratio`` is the variant's file over the baseline's (src/measure/size.py), and
    ``baseline/size/mb`` the baseline run's own ``size/mb``."""
    assert _same(metrics["baseline/size/mb"], baseline["size/mb"])
    assert _same(metrics["size/ratio"], metrics["size/mb"] / metrics["baseline/size/mb"])


def _same(a: float, b: float) -> bool:
    """Equal to 1e-9 (relative, or absolute near zero); NaN only equals NaN."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_dyad_every_method_reuses_one_baseline(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *ANOMALY]
    train_runs(*common, methods=["baseline", *METHODS], tmp=tmp_path)
    client, runs = _check_sweep(tmp_path, "auroc")
    assert runs["dynamic"].data.metrics["quant/int8_fraction"] == 1.0  # GRUs included
    assert "delta/threshold" in runs["static"].data.metrics
    # The logged static model (decomposed GRU, int8) loads back and scores the same.
    reload_and_rescore(runs["static"].info.run_id, client, tiny_root, tmp_path)
    tables = {a.path for a in client.list_artifacts(runs["static"].info.run_id, "tables")}
    assert {"tables/int8_coverage.csv", "tables/paired_units.csv"} <= tables
    from src.board import PairedTables

    paired = PairedTables(f"sqlite:///{tmp_path}/mlflow.db")(runs["static"].info.run_id)
    assert list(paired.columns) == ["unit", "label", "baseline", "variant"]
    assert len(paired) == runs["static"].data.metrics["test/n_vehicles"]


def test_cnn_every_method(tmp_path):
    common = ["experiment=cnn_digits", "model=cnn_tiny", "trainer.max_epochs=3", *FAST]
    train_runs(*common, methods=["baseline", *METHODS], tmp=tmp_path)
    _, runs = _check_sweep(tmp_path, "accuracy")
    assert runs["baseline"].data.metrics["test/accuracy"] > 0.8
    for name in ("static", "qat", "dynamic"):
        assert abs(runs[name].data.metrics["delta/accuracy"]) < 0.1, name
        metrics = runs[name].data.metrics  # fidelity: from the reused baseline's logged outputs
        assert metrics["fidelity/n_units"] == metrics["test/n_samples"], name
        assert metrics["fidelity/agreement"] > 0.8 and metrics["fidelity/kl"] >= 0, name


def test_bad_method_values_are_rejected_before_training(tmp_path):
    with pytest.raises(ConfigError, match="method.observer='kl'"):
        run_spec(
            compose_cfg("+method=static", "method.observer=kl", "model=dyad_tiny", tmp=tmp_path)
        )
    assert not (tmp_path / "mlflow.db").exists()


def test_dyad_prune_distill_chain(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=3", *ANOMALY]
    train_runs(*common, methods=["prune", "distill", "prune_dynamic"], tmp=tmp_path)
    client, runs = _by_method(tmp_path)
    assert sorted(runs) == ["baseline", "distill", "prune", "prune_dynamic"]
    base = runs["baseline"].data.metrics
    prune = runs["prune"].data.metrics
    assert prune["size/nonzero"] < 0.6 * prune["size/params"] and "size/mb_sparse" in prune
    assert prune["baseline/test/auroc"] == base["test/auroc"]
    chain = runs["prune_dynamic"].data.metrics
    assert chain["size/params"] < 0.6 * base["size/params"]  # hidden units really removed
    assert chain["chain/1_prune/size/params"] == chain["size/params"]
    assert "chain/1_prune/test/auroc" in chain and chain["quant/int8_fraction"] == 1.0
    distill = client.get_metric_history(runs["distill"].info.run_id, "train/distill_epoch")
    assert len(distill) == 3 and distill[-1].value < distill[0].value
    assert runs["distill"].data.params["method.student.hidden_size"] == "4"  # conf/student
    loaded = load(runs["prune_dynamic"].info.run_id, f"sqlite:///{tmp_path}/mlflow.db")
    assert loaded.model.config.hidden_size == 4


def test_cnn_prune_both_kinds_and_distill_chain(tmp_path):
    common = ["experiment=cnn_digits", "model=cnn_tiny", "trainer.max_epochs=2", *FAST]
    for structured in ("false", "true"):
        train_runs(*common, f"method.structured={structured}", methods=["prune"], tmp=tmp_path)
    train_runs(*common, methods=["distill_dynamic"], tmp=tmp_path)
    _, runs = job_runs(tmp_path)
    by_kind = {(r.data.tags["method"], r.data.params.get("method.structured")): r for r in runs}
    base = by_kind[("baseline", None)].data.metrics
    dense, shrunk = by_kind[("prune", "False")], by_kind[("prune", "True")]
    assert dense.data.metrics["size/params"] == base["size/params"]
    assert shrunk.data.metrics["size/params"] < 0.5 * base["size/params"]
    assert shrunk.data.metrics["size/ratio"] < 0.5
    assert load(shrunk.info.run_id, f"sqlite:///{tmp_path}/mlflow.db").model.config.widths == [4, 8]
    chain = by_kind[("distill_dynamic", None)].data.metrics
    assert chain["chain/1_distill/size/params"] < base["size/params"]
    assert chain["delta/accuracy"] > -0.5 and "baseline/test/accuracy" in chain


@pytest.mark.slow  # tests/methods/test_mixed.py and test_allocation.py cover both in the fast tier
def test_dyad_mixed_and_sensitivity_allocated_pruning(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *ANOMALY]
    # static: its int8 answers do not depend on the batch (dynamic ranges would), so the
    # reloaded model must score exactly as the run did
    mixed = ["method.scheme=static", "method.budget=0.001", "method.subsample=8"]
    train_runs(*common, *mixed, methods=["mixed"], tmp=tmp_path)
    allocated = [
        "method.allocation=sensitivity",
        "method.sparsity=0.6",
        "method.epochs=0",
        "method.ladder=[0.5,0.9]",
        "method.subsample=8",
    ]
    train_runs(*common, *allocated, methods=["prune"], tmp=tmp_path)
    client, runs = _by_method(tmp_path)
    mixed, prune = runs["mixed"], runs["prune"]
    settled = json.loads(mixed.data.tags["method.settled"])
    assert isinstance(settled["keep"], list) and mixed.data.params["method.keep"] == "None"
    assert 0 < mixed.data.metrics["quant/int8_fraction"] <= 1
    for run, table in ((mixed, "mixed_choice"), (prune, "prune_allocation")):
        files = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
        assert f"tables/{table}.csv" in files
    # the artifact rebuilds the settled mixture: reloaded, it scores the same
    reload_and_rescore(mixed.info.run_id, client, tiny_root, tmp_path)
    # 60 % of the weight matrices (biases and norms stay)
    assert prune.data.metrics["size/nonzero"] < 0.5 * prune.data.metrics["size/params"]
