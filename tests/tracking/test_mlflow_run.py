"""Run lifecycle: ``python -m pytest tests/tracking/test_mlflow_run.py``."""

import signal

import pytest

from src.core import schema
from src.core.lifecycle import Interrupted, phase
from src.tracking.health import StoreUnreachable
from src.tracking.mlflow_run import tracked_run
from src.tracking.store import RunStore


def test_failed_run_is_marked_failed_never_running(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(RuntimeError, match="boom"):
        with tracked_run(store, "exp", "baseline-x", {"method": "baseline"}) as run:
            run.log_metrics({"test/auroc": 0.5})
            raise RuntimeError("boom")
    got = store.get(run.run_id)
    assert got.info.status == "FAILED" and "boom" in got.data.tags["error"]
    assert got.data.tags["method"] == "baseline" and got.data.tags["mlflow.runName"] == "baseline-x"


def test_finished_run_and_artifacts_beside_the_store(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/store/mlflow.db")
    with tracked_run(store, "exp", "r", {}) as run:
        run.log_params({"long": "x" * 1000})
        run.log_text("a: 1\n", "config/config.yaml")
    got = store.get(run.run_id)
    assert got.info.status == "FINISHED" and got.data.params["long"] == "x" * 1000
    assert got.info.artifact_uri.startswith((tmp_path / "store" / "artifacts").as_uri())
    assert store.download(run.run_id, "config/config.yaml", tmp_path).endswith("config.yaml")


def test_interrupted_run_is_killed_with_its_signal_and_phase(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(Interrupted):
        with tracked_run(store, "exp", "r", {"method": "baseline"}) as run:
            raise Interrupted(signal.SIGTERM, "evaluating (scoring the test units, bootstrap)")
    got = store.get(run.run_id)
    assert got.info.status == "KILLED"
    assert got.data.tags[schema.STOP_SIGNAL] == "SIGTERM"
    assert got.data.tags[schema.STOP_PHASE].startswith("evaluating")


def test_a_store_lost_mid_run_is_one_line_naming_the_phase_and_the_rerun(tmp_path, monkeypatch):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")

    def gone(uri, write=True, timeout=5.0):
        raise StoreUnreachable(f"no MLflow server answers at {uri}")

    with pytest.raises(StoreUnreachable) as caught:
        with tracked_run(store, "exp", "r", {"method": "baseline"}) as run:
            monkeypatch.setattr("src.tracking.mlflow_run.check_store", gone)
            with phase("training dyad for 3 epoch(s)"):
                raise ConnectionError(
                    "Max retries exceeded with url: /api/2.0/mlflow/runs/log-batch"
                )
    line = str(caught.value)
    assert "stopped answering during training dyad for 3 epoch(s) (Max retries" in line
    assert f"run {run.run_id} keeps what it logged" in line and "rerun the same command" in line
    assert "\n" not in line
    assert store.get(run.run_id).info.status == "RUNNING"  # unmarkable: the next run reaps it


def test_two_runs_logging_a_new_dataset_at_once_both_link_it(tmp_path, monkeypatch):
    """MLflow looks before it inserts a dataset; another process inserting the same one in
    between (two sweeps on a fresh store) breaks the unique key. The run links the other's row."""
    import uuid

    import mlflow.store.tracking.sqlalchemy_store as sql_store

    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    args = ("battery-brand3", "1f0fbaa20e77", "/data", "training and evaluation", {"n": 9})
    with tracked_run(store, "exp", "other", {}) as other, tracked_run(store, "exp", "r", {}) as run:
        first = []

        class Interleaved:  # MLflow draws the new row's id after looking, before inserting
            @staticmethod
            def uuid4():
                if not first:
                    first.append(True)
                    monkeypatch.setattr(sql_store, "uuid", uuid)  # a session of its own
                    other.log_dataset(*args[:3], {"seed": 0}, args[3], args[4])
                return uuid.uuid4()

        monkeypatch.setattr(sql_store, "uuid", Interleaved)
        run.log_dataset(*args[:3], {"seed": 1}, args[3], args[4])
    assert first, "the interleaving never happened: MLflow's insert path changed"
    inputs = {r: store.get(r).inputs.dataset_inputs for r in (other.run_id, run.run_id)}
    (mine,), (theirs,) = inputs[run.run_id], inputs[other.run_id]
    assert mine.dataset.digest == theirs.dataset.digest == "1f0fbaa20e77"
    assert {t.key: t.value for t in mine.tags}["seed"] == "1"  # each run keeps its own facts
    assert {t.key: t.value for t in theirs.tags}["seed"] == "0"
