"""One MLflow run per training run, owned by us from creation to FINISHED or FAILED.

Lightning's ``MLFlowLogger`` marks a run FINISHED as soon as ``fit`` returns, before evaluation
and artifacts; a crash after that would leave a "finished" run without results. So we create the
run ourselves, hand its id to the logger (whose ``finalize`` is neutralised), and set the final
status in :func:`tracked_run`, which marks it FAILED on any exception.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from pytorch_lightning.loggers import MLFlowLogger

from src.core import schema
from src.core.paths import git_commit
from src.tracking.store import RunStore

MAX_PARAM_CHARS = 6000  # MLflow's own limit; Lightning's logger would cut at 250


@dataclass(frozen=True)
class TrackedRun:
    """Handle on an open MLflow run."""

    client: MlflowClient
    run_id: str
    tracking_uri: str

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(batch), 500):
            self.client.log_batch(self.run_id, metrics=batch[start : start + 500])

    def log_params(self, params: dict[str, object]) -> None:
        batch = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
        for start in range(0, len(batch), 100):
            self.client.log_batch(self.run_id, params=batch[start : start + 100])

    def set_tags(self, tags: dict[str, object]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_table(self, name: str, frame: pd.DataFrame, folder: str = "tables") -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.csv"
            frame.to_csv(path, index=False)
            self.client.log_artifact(self.run_id, str(path), folder)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), folder)
        else:
            self.client.log_artifact(self.run_id, str(path), folder)


@contextmanager
def tracked_run(
    store: RunStore, experiment: str, run_name: str, tags: dict
) -> Iterator[TrackedRun]:
    """Open a run; FINISHED on normal exit, FAILED (with the error as a tag) on any exception."""
    all_tags = {
        schema.RUN_NAME: run_name,
        schema.SOURCE_NAME: "src.train",
        schema.GIT_COMMIT: git_commit(),
        **tags,
    }
    run_id = store.create_run(experiment, run_name, all_tags)
    client = store.client
    handle = TrackedRun(client, run_id, store.uri)
    try:
        yield handle
    except BaseException as err:
        client.set_tag(run_id, schema.ERROR, f"{type(err).__name__}: {err}"[:5000])
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")


class _RunOwnedLogger(MLFlowLogger):
    """Lightning logs training curves into our run but never ends it (see module docstring)."""

    def finalize(self, status: str = "success") -> None:
        return None


def lightning_logger(run: TrackedRun) -> MLFlowLogger:
    """An ``MLFlowLogger`` writing to ``run`` (explicit URI: its default is a file store)."""
    return _RunOwnedLogger(tracking_uri=run.tracking_uri, run_id=run.run_id)
