"""End to end through the user's command: ``python -m pytest tests/test_train.py``."""

import numpy as np
import pandas as pd

from src.data.battery import BatteryDataModule
from src.data.normalizer import Normalizer
from src.tasks.anomaly import snippet_errors
from src.tracking.artifacts import load
from tests.conftest import job_runs, run_train


def _runs(tmp):
    return job_runs(tmp)


def test_baseline_run_is_logged_and_reloads(tiny_root, tmp_path):
    proc = run_train(
        "model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", "seed=3", tmp=tmp_path
    )
    client, runs = _runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_id in proc.stdout
    for key in (
        "test/auroc",
        "test/auroc_ci_low",
        "test/auroc_ci_high",
        "test/recall",
        "test/false_alarm_rate",
        "test/precision",
        "test/f1",
        "test/n_vehicles",
        "size/mb",
        "size/params",
    ):
        assert key in run.data.metrics, key
    assert 0.0 <= run.data.metrics["test/auroc"] <= 1.0
    tags = run.data.tags
    assert (tags["method"], tags["model"], tags["data"]) == ("baseline", "dyad_tiny", "battery")
    assert (tags["seed"], tags["fold"], tags["brand"]) == ("3", "0", "3")
    assert tags["mlflow.source.git.commit"] and tags["torch_version"].startswith("2.13")
    assert run.data.params["model.hidden_size"] == "8"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config", "model", "tables"} <= artifacts
    assert "loss" not in run.data.metrics and "train/loss_epoch" in run.data.metrics

    loaded = load(run.info.run_id, f"sqlite:///{tmp_path}/mlflow.db")
    extras = loaded.extras
    dm = BatteryDataModule(tiny_root, 3, extras["fold"], extras["channels"], tmp_path / "data")
    dm.setup()
    dm.normalizer = Normalizer.from_state_dict(extras["normalizer"])
    errors, rows = snippet_errors(loaded.model, dm.score_dataloader(dm.split.test_cars))
    scores = pd.read_csv(
        client.download_artifacts(run.info.run_id, "tables/vehicle_scores.csv", str(tmp_path))
    )
    test = scores[scores.role == "test"].set_index("car").mean_score
    mine = pd.Series(errors).groupby(dm.store.car[rows]).mean()
    np.testing.assert_allclose(mine.loc[test.index].to_numpy(), test.to_numpy(), rtol=1e-5)


def test_bad_input_is_one_line_and_the_run_is_failed(tmp_path):
    proc = run_train("model=dyad_tiny", f"data.root={tmp_path}/nowhere", tmp=tmp_path, check=False)
    assert proc.returncode == 2
    assert "error: data.root=" in proc.stderr and "Traceback" not in proc.stderr
    _, runs = _runs(tmp_path)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "does not exist" in runs[0].data.tags["error"]


def test_file_store_is_refused_with_the_fix(tiny_root, tmp_path):
    proc = run_train(
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        f"logger.tracking_uri={tmp_path}/mlruns",
        tmp=tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and "sqlite:///" in proc.stderr and "Traceback" not in proc.stderr


def test_detects_clear_faults(tmp_path):
    """On a preset whose faults are plain, DyAD separates the vehicles (AUROC >= 0.8)."""
    from src.data.synth import generate

    generate("clear", tmp_path / "clear", seed=0)
    run_train(
        "model=dyad",
        f"data.root={tmp_path}/clear",
        "data.batch_size=32",
        "trainer.max_epochs=20",
        tmp=tmp_path,
    )
    _, runs = _runs(tmp_path)
    assert runs[0].data.metrics["test/auroc"] >= 0.8


def test_five_fold_multirun_gives_one_run_per_fold(tiny_root, tmp_path):
    run_train(
        "-m",
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        "data.fold=0,1",
        "evaluation.n_boot=50",
        tmp=tmp_path,
    )
    _, runs = _runs(tmp_path)
    assert sorted(r.data.tags["fold"] for r in runs) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_cnn_on_digits_reaches_90_percent(tmp_path):
    run_train("experiment=cnn_digits", "model=cnn_tiny", tmp=tmp_path)
    client, runs = _runs(tmp_path)
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/accuracy"] >= 0.9
    assert {"test/f1_macro", "test/loss", "val/accuracy", "size/mb"} <= set(run.data.metrics)
    tags = run.data.tags
    assert (tags["method"], tags["model"], tags["data"], tags["task"]) == (
        "baseline",
        "cnn_tiny",
        "digits",
        "classification",
    )
    assert [a.path for a in client.list_artifacts(run.info.run_id, "tables")] == [
        "tables/per_class_accuracy.csv"
    ]
    assert load(run.info.run_id, f"sqlite:///{tmp_path}/mlflow.db").extras["classes"][0] == "0"


def test_cnn_on_cifar10_files(tmp_path):
    from tests.data.test_image_sources import write_cifar

    write_cifar(tmp_path / "cifar", per_batch=20)
    run_train(
        "experiment=cnn_cifar10",
        "model=cnn_tiny",
        f"data.root={tmp_path}/cifar",
        "trainer.max_epochs=1",
        tmp=tmp_path,
    )
    _, runs = _runs(tmp_path)
    assert runs[0].info.status == "FINISHED" and runs[0].data.metrics["test/n_samples"] == 20
    missing = run_train(
        "experiment=cnn_cifar10", f"data.root={tmp_path}/nothing", tmp=tmp_path, check=False
    )
    assert missing.returncode == 2 and "extract cifar-10-python.tar.gz" in missing.stderr
