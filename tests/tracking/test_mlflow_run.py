"""Run lifecycle: ``python -m pytest tests/tracking/test_mlflow_run.py``."""

import pytest
from mlflow.tracking import MlflowClient

from src.tracking.mlflow_run import TrackingConfigError, resolve_tracking_uri, tracked_run


def test_failed_run_is_marked_failed_never_running(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RuntimeError, match="boom"):
        with tracked_run(uri, "exp", "baseline-x", {"method": "baseline"}) as run:
            run.log_metrics({"test/auroc": 0.5})
            raise RuntimeError("boom")
    got = MlflowClient(uri).get_run(run.run_id)
    assert got.info.status == "FAILED" and "boom" in got.data.tags["error"]
    assert got.data.tags["method"] == "baseline" and got.data.tags["mlflow.runName"] == "baseline-x"


def test_finished_run_and_artifacts_beside_the_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    with tracked_run(uri, "exp", "r", {}) as run:
        run.log_params({"long": "x" * 1000})
    got = MlflowClient(uri).get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.params["long"] == "x" * 1000
    assert got.info.artifact_uri.startswith((tmp_path / "store" / "artifacts").as_uri())


@pytest.mark.parametrize("uri", ["mlruns", "./mlruns", "file:///tmp/mlruns", ""])
def test_file_stores_are_refused(uri):
    with pytest.raises(TrackingConfigError, match="sqlite:///"):
        resolve_tracking_uri(uri)
