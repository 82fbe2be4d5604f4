"""``python -m src.sensitivity`` in process: ``pytest tests/test_sensitivity.py``."""

import pandas as pd
import pytest

from src.board import is_counted, load_runs
from src.core.errors import ConfigError
from src.pipeline.sensitivity import SensitivitySpec
from src.sensitivity import analyse
from tests.conftest import FAST, compose_cfg

TINY = ["model=dyad_tiny", "trainer.max_epochs=1", "task.evaluation.n_boot=50", *FAST]


def test_every_layer_alone_on_the_tuning_vehicles_only(tiny_root, tmp_path, monkeypatch):
    from src.data.battery import BatteryDataModule

    scored = []
    original = BatteryDataModule.score_dataloader

    def spy(self, cars, per_car=None):
        scored.append((set(cars) == set(self.split.tuning_cars), per_car))
        return original(self, cars, per_car)

    settings = ["sensitivity.treatments=[static]", "sensitivity.sparsities=[0.9]"]
    cfg = compose_cfg(
        *TINY, f"data.root={tiny_root}", *settings, tmp=tmp_path, config="sensitivity"
    )
    monkeypatch.setattr(BatteryDataModule, "score_dataloader", spy)
    run_id, table = analyse(cfg)
    # 14 layers x (static, prune 0.9); every one scored on tuning cars
    assert len(table) == 14 * 2 and table.layer.nunique() == 14
    assert set(table.treatment) == {"static", "prune:0.9"}
    analysis = [tuning_only for tuning_only, per_car in scored if per_car == 32]
    assert len(analysis) == 1 + 14 * 2 and all(analysis)  # untreated, then each treated model
    runs = load_runs(f"sqlite:///{tmp_path}/mlflow.db", include_baselines=False)
    assert runs.set_index("run_id").loc[run_id, "tags.analysis"] == "sensitivity"
    assert not is_counted(runs[runs.run_id == run_id]).any()  # never ranked as a variant
    quantized = table[table.treatment == "static"]
    assert quantized.speedup_bs1.notna().all() and table.loss_rise.notna().all()
    assert table[table.treatment == "prune:0.9"].loss_rise.mean() > quantized.loss_rise.mean()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    files = {
        a.path for folder in ("tables", "plots") for a in client.list_artifacts(run_id, folder)
    }
    assert {"tables/sensitivity.csv", "plots/sensitivity.png"} <= files
    logged = pd.read_csv(client.download_artifacts(run_id, "tables/sensitivity.csv", str(tmp_path)))
    assert len(logged) == len(table)


def test_a_stopped_analysis_resumes_and_a_finished_one_is_reused(tiny_root, tmp_path, monkeypatch):
    """Stopped after 5 treated models, the same analysis treats only the rest, in the same run;
    typed once more, it is returned without treating anything; rerun=true analyses again."""
    import signal

    from src.core.lifecycle import Interrupted
    from src.pipeline import sensitivity
    from src.tracking.store import RunStore

    treated, original = [], sensitivity.treat

    def counted(base, layer, treatment, data):
        if len(treated) == 5 and stop:
            raise Interrupted(signal.SIGTERM, "treating layers")
        treated.append((layer.name, treatment))
        return original(base, layer, treatment, data)

    monkeypatch.setattr(sensitivity, "treat", counted)
    settings = ["sensitivity.treatments=[dynamic]", "sensitivity.sparsities=[0.5]"]
    args = [*TINY, f"data.root={tiny_root}", *settings, "sensitivity.latency=false"]
    cfg = compose_cfg(*args, tmp=tmp_path, config="sensitivity")
    stop = True
    with pytest.raises(Interrupted):
        analyse(cfg)
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    (stopped,) = store.search(["tags.method = 'sensitivity'"])
    assert stopped.info.status == "KILLED"
    stop = False
    run_id, table = analyse(compose_cfg(*args, tmp=tmp_path, config="sensitivity"))
    assert run_id == stopped.info.run_id and len(treated) == len(table) == 14 * 2
    assert len(set(treated)) == len(treated)  # no model treated twice
    run = store.get(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["resumed"] == "1"
    again = analyse(compose_cfg(*args, tmp=tmp_path, config="sensitivity"))
    assert again[0] == run_id and len(treated) == len(table)  # reused: nothing treated
    fresh_id, fresh = analyse(compose_cfg(*args, "rerun=true", tmp=tmp_path, config="sensitivity"))
    assert fresh_id != run_id and len(treated) == 2 * len(table)
    pd.testing.assert_frame_equal(table, fresh, check_dtype=False)  # as if never stopped


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="treatments"):
        SensitivitySpec(treatments=("fp8",))
    with pytest.raises(ConfigError, match="sparsities"):
        SensitivitySpec(sparsities=(0.0,))


@pytest.mark.slow
def test_cnn_layers_and_a_static_mixture_on_the_validation_images(tmp_path):
    common = ["experiment=cnn_digits", "model=cnn_tiny", "trainer.max_epochs=2", *FAST]
    cfg = compose_cfg(*common, "sensitivity.sparsities=[0.5]", tmp=tmp_path, config="sensitivity")
    _, table = analyse(cfg)
    convs = table[table.kind == "conv"]
    assert set(convs.treatment) == {"static", "prune:0.5"}  # no dynamic int8 conv
    assert "tuning/accuracy" in table and table["delta_tuning/accuracy"].notna().all()
    from tests.conftest import train_runs

    done = train_runs(
        *common, "method.scheme=static", "method.budget=0.01", methods=["mixed"], tmp=tmp_path
    )
    metrics = done["mixed"].result.metrics
    assert 0 < metrics["quant/int8_fraction"] <= 1 and "tuning/accuracy" in metrics
