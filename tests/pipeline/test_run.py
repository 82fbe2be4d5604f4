"""One job from specs, in process: ``python -m pytest tests/pipeline/test_run.py``."""

from __future__ import annotations

import json

import mlflow
import pytest

from src.cli.specs import run_spec
from src.core import schema
from src.pipeline.record import logged_result
from src.tracking.store import RunStore
from tests.conftest import FAST, compose_cfg, train_runs


def test_a_reused_baseline_is_paired_from_its_logged_units_not_scored_again(tiny_root, tmp_path):
    # alpha 0.2: the tiny fleet holds 5 normal cars out, too few for a finite threshold at 0.05
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *FAST]
    common.append("task.evaluation.alpha=0.2")
    done = train_runs(
        *common, "task.evaluation.n_boot=20", methods=["baseline", "dynamic"], tmp=tmp_path
    )
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    base = done["baseline"]
    spec = run_spec(compose_cfg(*common, "task.evaluation.n_boot=20", tmp=tmp_path))
    logged = logged_result(store, base.run_id, spec)
    assert logged is not None
    assert logged.metrics["test/auroc"] == base.result.metrics["test/auroc"]
    fresh = base.result.units.astype({"unit": str}).reset_index(drop=True)
    assert logged.units.equals(fresh.astype(logged.units.dtypes.to_dict()))
    other = run_spec(compose_cfg(*common, "task.evaluation.n_boot=21", tmp=tmp_path))
    assert logged_result(store, base.run_id, other) is None  # another protocol: score again
    # the method run's pairs carry the baseline's logged scores
    paired = done["dynamic"].result.tables["paired_units"].set_index("unit")
    scores = logged.units.set_index("unit")["value"]
    assert (paired["baseline"] == scores.loc[paired.index]).all()
    # fidelity: from the logged baseline's tables, as from the one in memory
    assert set(logged.tables) == set(spec.task.fidelity_tables)
    variant = done["dynamic"]
    expected = spec.task.fidelity(variant.result, base.result, spec.seed)
    logged_metrics = store.get(variant.run_id).data.metrics
    fidelity = {k: logged_metrics.get(k) for k in expected}
    assert fidelity == expected and schema.TUNING_SHIFT in fidelity
    # what the run read, as MLflow dataset inputs; the experiment opens as model training
    for run_id in (base.run_id, variant.run_id):
        run = store.get(run_id)
        (found,) = run.inputs.dataset_inputs
        assert found.dataset.digest == run.data.tags[schema.DATA_FINGERPRINT]
        assert json.loads(found.dataset.profile) == base.data.profile()  # the data set's own
        facts = {tag.key: tag.value for tag in found.tags}  # this run's use of it
        assert facts["n_test_cars"] == str(len(base.data.split.test_cars))
        assert facts["fold"] == run.data.tags["fold"] and facts["seed"] == run.data.tags["seed"]
        assert found.dataset.name == "battery-brand3" and str(tiny_root) in found.dataset.source
        assert facts[schema.DATASET_CONTEXT] == "training and evaluation"
    experiment = store.client.get_experiment(store.get(base.run_id).info.experiment_id)
    assert experiment.tags[schema.EXPERIMENT_KIND] == schema.MODEL_TRAINING
    vehicles = base.result.tables[schema.VEHICLE_SCORES_TABLE]
    assert fidelity[schema.FIDELITY_N_UNITS] == len(vehicles) > len(base.result.units)
    assert {schema.flips_bound(schema.FIDELITY_FLIPS), schema.FIDELITY_MARGIN_SHIFT} <= set(
        fidelity
    )


@pytest.mark.slow
def test_every_run_is_measured_in_onnxruntime_with_parity(tiny_root, tmp_path):
    """Baseline and dynamic int8 in ONNX Runtime: timed beside fp32, parity, the file logged."""
    from src.train import train

    args = [
        "model=dyad_tiny",
        "trainer.max_epochs=1",
        "task.evaluation.n_boot=50",
        *FAST,
        "benchmark.runtimes=[eager,onnxruntime]",
        f"data.root={tiny_root}",
    ]
    outcome = train(compose_cfg(*args, "+method=dynamic", tmp=tmp_path))
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(outcome.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["runtime.onnxruntime.form"] == "ORT dynamic int8, 2 GRU(s) unrolled"
    assert metrics["runtime/onnxruntime/parity"] == 1.0
    assert metrics["runtime/onnxruntime/int8_ops"] > 0
    assert abs(metrics["runtime/onnxruntime/test/auroc"] - metrics["test/auroc"]) <= 0.01
    for key in ("speedup_bs1", "speedup_bs1_ci_low", "vs_fp32_bs1", "vs_fp32_bsN"):
        assert metrics[f"latency/onnxruntime/{key}"] > 0, key
    assert metrics["size/onnx_mb"] > 0
    assert "model/model.onnx" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    baseline = client.get_run(tags["baseline_run_id"])
    assert baseline.data.metrics["latency/onnxruntime/speedup_bs1"] > 0  # ORT fp32 vs eager


@pytest.mark.slow
def test_a_broken_baseline_fails_its_method_run_in_one_line_and_is_skipped_next(
    tiny_root, tmp_path
):
    from src.core import schema
    from src.core.errors import UserError
    from src.train import train

    common = [
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        "task.evaluation.n_boot=20",
        *FAST,
    ]
    base = train_runs(*common, tmp=tmp_path)["baseline"]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    artifact = client.get_run(base.run_id).info.artifact_uri.removeprefix("file://")
    model_file = f"{artifact}/model/model.pt"
    with open(model_file, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(UserError, match=f"run {base.run_id} is truncated or corrupt") as err:
        train(compose_cfg(*common, "+method=dynamic", tmp=tmp_path))
    assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert [r.data.tags["method"] for r in failed] == ["dynamic"]  # recorded, with the line
    assert "truncated" in failed[0].data.tags[schema.ERROR]
    assert schema.ARTIFACT_BROKEN in client.get_run(base.run_id).data.tags
    again = train(compose_cfg(*common, "+method=dynamic", tmp=tmp_path))  # a new baseline
    new_base = client.get_run(again.run_id).data.tags[schema.BASELINE_RUN_ID]
    assert new_base != base.run_id
