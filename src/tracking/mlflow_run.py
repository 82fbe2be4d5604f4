"""One MLflow run per training run, owned by us from creation to FINISHED or FAILED.

Lightning's ``MLFlowLogger`` marks a run FINISHED as soon as ``fit`` returns, before evaluation
and artifacts; a crash after that would leave a "finished" run without results. So we create the
run ourselves, hand its id to the logger (whose ``finalize`` is neutralised), and set the final
status in :func:`tracked_run`, which marks it FAILED on any exception.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
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

from src.errors import UserError

MAX_PARAM_CHARS = 6000  # MLflow's own limit; Lightning's logger would cut at 250


class TrackingConfigError(UserError):
    """The tracking URI cannot work; the message says what to set."""


@dataclass(frozen=True)
class TrackedRun:
    """Handle on an open MLflow run."""

    client: MlflowClient
    run_id: str
    experiment_id: str
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


def resolve_tracking_uri(uri: str) -> str:
    """Validate the store URI. MLflow 3 refuses file stores, so refuse them here, clearly."""
    uri = str(uri).strip()
    if not uri:
        raise TrackingConfigError("logger.tracking_uri is empty; use sqlite:///<dir>/mlflow.db")
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingConfigError(
            f"logger.tracking_uri={uri!r} is a file store, which MLflow 3 refuses; use "
            f"sqlite:///<dir>/mlflow.db or an http(s):// server (or set MLFLOW_TRACKING_URI)"
        )
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def _artifact_root(uri: str) -> str | None:
    """Beside the SQLite file (``mlruns/artifacts``), so the store is one self-contained folder."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """Id of experiment ``name``, created once. Locked: parallel first runs race on SQLite."""
    lock = None
    if uri.startswith("sqlite:///"):
        lock = Path(uri.removeprefix("sqlite:///")).with_suffix(".lock").open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    finally:
        if lock is not None:
            lock.close()


@contextmanager
def tracked_run(uri: str, experiment: str, run_name: str, tags: dict) -> Iterator[TrackedRun]:
    """Open a run; FINISHED on normal exit, FAILED (with the error as a tag) on any exception."""
    uri = resolve_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(client, experiment, uri)
    all_tags = {
        "mlflow.runName": run_name,
        "mlflow.source.name": "src.train",
        "mlflow.source.git.commit": git_commit(),
        **tags,
    }
    run = client.create_run(
        experiment_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()}
    )
    handle = TrackedRun(client, run.info.run_id, experiment_id, uri)
    try:
        yield handle
    except BaseException as err:
        client.set_tag(handle.run_id, "error", f"{type(err).__name__}: {err}"[:5000])
        client.set_terminated(handle.run_id, "FAILED")
        raise
    client.set_terminated(handle.run_id, "FINISHED")


class _RunOwnedLogger(MLFlowLogger):
    """Lightning logs training curves into our run but never ends it (see module docstring)."""

    def finalize(self, status: str = "success") -> None:
        return None


def lightning_logger(run: TrackedRun) -> MLFlowLogger:
    """An ``MLFlowLogger`` writing to ``run`` (explicit URI: its default is a file store)."""
    return _RunOwnedLogger(tracking_uri=run.tracking_uri, run_id=run.run_id)


def git_commit() -> str:
    """The checkout's commit, with ``-dirty`` when it has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty.strip() else sha


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's SQLite store."""
    root = Path(__file__).resolve().parents[2]
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlruns/mlflow.db")
