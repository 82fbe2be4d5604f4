"""End to end, in process, as ``python -m src.train`` runs it: ``pytest tests/test_train.py``.

Subprocess tests are kept where the command line itself is the subject (exit codes, one-line
errors, multiruns) and marked ``slow`` when they train more than a few seconds.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from src.cli import entry
from src.data.battery import BatteryDataModule
from src.data.normalizer import Normalizer
from src.pipeline.artifact import load
from src.tasks.anomaly import snippet_errors
from src.train import job, train
from tests.conftest import FAST, compose_cfg, job_runs, run_train

TINY = ["model=dyad_tiny", "trainer.max_epochs=1", "task.evaluation.n_boot=50", *FAST]


def reload_and_rescore(run_id: str, client, root, tmp_path) -> None:
    """The logged model, reloaded with ``weights_only``, scores the test cars as the run logged."""
    loaded = load(run_id, f"sqlite:///{tmp_path}/mlflow.db")
    extras = loaded.extras
    dm = BatteryDataModule(root, 3, extras["fold"], extras["channels"], tmp_path / "data")
    dm.setup()
    dm.normalizer = Normalizer.from_state_dict(extras["normalizer"])
    errors, rows = snippet_errors(loaded.model, dm.score_dataloader(dm.split.test_cars))
    scores = pd.read_csv(client.download_artifacts(run_id, "tables/vehicle_scores.csv", tmp_path))
    test = scores[scores.role == "test"].set_index("car").mean_score
    mine = pd.Series(errors).groupby(dm.store.car[rows]).mean()
    np.testing.assert_allclose(mine.loc[test.index].to_numpy(), test.to_numpy(), rtol=1e-5)


def test_baseline_run_is_logged_and_reloads(tiny_root, tmp_path):
    outcome = train(compose_cfg(*TINY, f"data.root={tiny_root}", "seed=3", tmp=tmp_path))
    client, runs = job_runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_id == outcome.run_id
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
    assert (tags["seed"], tags["fold"], tags["brand"], tags["data_variant"]) == (
        "3",
        "0",
        "3",
        "brand3",
    )
    assert (
        tags["primary_metric"] == "test/auroc" and '"test/false_alarm_rate"' in tags["metric_specs"]
    )
    assert tags["mlflow.source.git.commit"] and tags["torch_version"].startswith("2.13")
    assert run.data.params["model.hidden_size"] == "8"
    assert run.data.params["task.loss.x0"] == "500.0"
    assert "method.name" not in run.data.params
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config", "model", "tables", "checkpoint"} <= artifacts
    (checkpoint,) = client.list_artifacts(run.info.run_id, "checkpoint")
    state = torch.load(
        client.download_artifacts(run.info.run_id, checkpoint.path, str(tmp_path)),
        weights_only=True,
    )
    assert state["epoch"] == 0 and "optimizer_states" in state and "rng_state" in state
    assert "loss" not in run.data.metrics and "train/loss_epoch" in run.data.metrics
    reload_and_rescore(run.info.run_id, client, tiny_root, tmp_path)


def test_bad_input_is_one_line_before_any_run_opens(tmp_path):
    entry.clear()
    cfg = compose_cfg("model=dyad_tiny", f"data.root={tmp_path}/nowhere", tmp=tmp_path)
    assert math.isnan(job(cfg))
    assert len(entry.failures()) == 1 and "data.root=" in entry.failures()[0]
    assert "does not exist" in entry.failures()[0]
    assert not (tmp_path / "mlflow.db").exists() or job_runs(tmp_path)[1] == []  # no clutter
    entry.clear()


def test_file_store_is_refused_with_the_fix(tiny_root, tmp_path):
    entry.clear()
    cfg = compose_cfg(
        *TINY, f"data.root={tiny_root}", f"logger.tracking_uri={tmp_path}/mlruns", tmp=tmp_path
    )
    assert math.isnan(job(cfg)) and "sqlite:///" in entry.failures()[-1]
    entry.clear()


@pytest.mark.parametrize("epochs", [0, -1])
def test_max_epochs_must_train(epochs, tmp_path):
    from src.cli.specs import run_spec
    from src.core.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.max_epochs"):
        run_spec(compose_cfg("model=dyad_tiny", f"trainer.max_epochs={epochs}", tmp=tmp_path))


def test_cnn_on_digits_reaches_90_percent(tmp_path):
    outcome = train(compose_cfg("experiment=cnn_digits", "model=cnn_tiny", *FAST, tmp=tmp_path))
    client, runs = job_runs(tmp_path)
    run = runs[0]
    assert run.info.status == "FINISHED" and outcome.primary_metric == "test/accuracy"
    assert run.data.metrics["test/accuracy"] >= 0.9
    assert {"test/f1_macro", "test/loss", "val/accuracy", "size/mb"} <= set(run.data.metrics)
    tags = run.data.tags
    assert (tags["method"], tags["model"], tags["data"], tags["task"]) == (
        "baseline",
        "cnn_tiny",
        "digits",
        "classification",
    )
    assert tags["data_variant"] == "" and tags["primary_metric"] == "test/accuracy"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "tables")] == [
        "tables/image_outputs.csv",  # per test image, class and log-probabilities: fidelity
        "tables/per_class_accuracy.csv",
        "tables/tuning_outputs.csv",  # the same per validation image: what a search reads
        "tables/units.csv",  # per test image, right or wrong: what variants pair with
    ]
    assert load(run.info.run_id, f"sqlite:///{tmp_path}/mlflow.db").extras["classes"][0] == "0"


def test_cnn_on_cifar10_files(tmp_path):
    from tests.data.test_image_sources import write_cifar

    write_cifar(tmp_path / "cifar", per_batch=20)
    common = ["experiment=cnn_cifar10", "model=cnn_tiny", *FAST]
    train(compose_cfg(*common, f"data.root={tmp_path}/cifar", "trainer.max_epochs=1", tmp=tmp_path))
    _, runs = job_runs(tmp_path)
    assert runs[0].info.status == "FINISHED" and runs[0].data.metrics["test/n_samples"] == 20
    entry.clear()
    assert math.isnan(job(compose_cfg(*common, f"data.root={tmp_path}/nothing", tmp=tmp_path)))
    assert "extract cifar-10-python.tar.gz" in entry.failures()[-1]
    entry.clear()


def test_the_command_line_exits_2_with_one_line(tmp_path):
    proc = run_train("model=dyad_tiny", f"data.root={tmp_path}/nowhere", tmp=tmp_path, check=False)
    assert proc.returncode == 2
    assert "error: data.root=" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_detects_clear_faults(tmp_path):
    """On a preset whose faults are plain, DyAD separates the vehicles (AUROC >= 0.8)."""
    from src.data.synth import generate

    generate("clear", tmp_path / "clear", seed=0)
    train(
        compose_cfg(
            "model=dyad",
            f"data.root={tmp_path}/clear",
            "data.batch_size=32",
            "trainer.max_epochs=20",
            *FAST,
            tmp=tmp_path,
        )
    )
    _, runs = job_runs(tmp_path)
    assert runs[0].data.metrics["test/auroc"] >= 0.8


@pytest.mark.slow
def test_five_fold_multirun_gives_one_run_per_fold(tiny_root, tmp_path):
    run_train("-m", *TINY, f"data.root={tiny_root}", "data.fold=0,1", tmp=tmp_path)
    _, runs = job_runs(tmp_path)
    assert sorted(r.data.tags["fold"] for r in runs) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}
