"""Methods through the user's command, one sweep per family: ``pytest tests/methods/test_cli.py``.

Latency settings are cut to a minimum here (timing is the benchmark's job, not the tests').
"""

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from src.data.battery import BatteryDataModule
from src.tasks.anomaly import snippet_errors
from src.tracking.artifacts import load
from tests.conftest import job_runs, run_train

FAST = [
    "benchmark.iters=2",
    "benchmark.rounds=1",
    "benchmark.warmup=1",
    "benchmark.batch_sizes=[1,8]",
    "evaluation.n_boot=50",
]
METHODS = ["dynamic", "static", "qat", "fp16", "bf16"]


def _runs(tmp):
    client, runs = job_runs(tmp)
    return client, {r.data.tags["method"]: r for r in runs}


def _check_sweep(tmp, primary):
    client, runs = _runs(tmp)
    assert sorted(runs) == sorted(["baseline", *METHODS])
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    base_id = runs["baseline"].info.run_id
    for name in METHODS:
        metrics = runs[name].data.metrics
        assert runs[name].data.tags["baseline_run_id"] == base_id
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
            f"test/{primary}",
        ):
            assert key in metrics, (name, key)
        assert runs[name].data.tags["latency.threads"] == "2"
    assert runs["static"].data.metrics["quant/int8_fraction"] == 1.0
    assert runs["fp16"].data.metrics["quant/int8_fraction"] == 0.0
    return client, runs


def test_dyad_sweep_every_method_reuses_one_baseline(tiny_root, tmp_path):
    run_train(
        "-m",
        f"+method={','.join(METHODS)}",
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        *FAST,
        tmp=tmp_path,
    )
    client, runs = _check_sweep(tmp_path, "auroc")
    assert runs["dynamic"].data.metrics["quant/int8_fraction"] == 1.0  # GRUs included
    assert "delta/threshold" in runs["static"].data.metrics
    # The logged static model (decomposed GRU, int8) loads back and scores the same.
    run_id = runs["static"].info.run_id
    loaded = load(run_id, f"sqlite:///{tmp_path}/mlflow.db")
    dm = BatteryDataModule(tiny_root, 3, 0, loaded.extras["channels"], tmp_path / "data")
    dm.setup()
    errors, rows = snippet_errors(loaded.model, dm.score_dataloader(dm.split.test_cars))
    logged = pd.read_csv(
        client.download_artifacts(run_id, "tables/vehicle_scores.csv", str(tmp_path))
    )
    test = logged[logged.role == "test"].set_index("car").mean_score
    mine = pd.Series(errors).groupby(dm.store.car[rows]).mean()
    np.testing.assert_allclose(mine.loc[test.index].to_numpy(), test.to_numpy(), rtol=1e-5)
    assert "tables/int8_coverage.csv" in {a.path for a in client.list_artifacts(run_id, "tables")}


def test_cnn_sweep_every_method(tmp_path):
    run_train(
        "-m",
        f"+method={','.join(METHODS)}",
        "experiment=cnn_digits",
        "model=cnn_tiny",
        "trainer.max_epochs=3",
        *FAST,
        tmp=tmp_path,
    )
    _, runs = _check_sweep(tmp_path, "accuracy")
    assert runs["baseline"].data.metrics["test/accuracy"] > 0.8
    for name in ("static", "qat", "dynamic"):
        assert abs(runs[name].data.metrics["delta/accuracy"]) < 0.1, name


def test_bad_method_values_are_rejected_before_training(tmp_path):
    proc = run_train(
        "+method=static", "method.observer=kl", "model=dyad_tiny", tmp=tmp_path, check=False
    )
    assert proc.returncode == 2 and "method.observer='kl'" in proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert [
        r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
    ] == []


def _by_method(tmp):
    client, runs = job_runs(tmp)
    assert {r.info.status for r in runs} == {"FINISHED"}
    return client, runs


def test_dyad_prune_distill_chain_sweep(tiny_root, tmp_path):
    run_train(
        "-m",
        "+method=prune,distill,prune_dynamic",
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=3",
        *FAST,
        tmp=tmp_path,
    )
    client, runs = _by_method(tmp_path)
    runs = {r.data.tags["method"]: r for r in runs}
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
    loaded = load(runs["prune_dynamic"].info.run_id, f"sqlite:///{tmp_path}/mlflow.db")
    assert loaded.model.config.hidden_size == 4


def test_cnn_prune_both_kinds_and_distill_chain(tmp_path):
    common = ["experiment=cnn_digits", "model=cnn_tiny", "trainer.max_epochs=2", *FAST]
    run_train("-m", "+method=prune", "method.structured=false,true", *common, tmp=tmp_path)
    run_train("+method=distill_dynamic", *common, tmp=tmp_path)
    client, runs = _by_method(tmp_path)
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
