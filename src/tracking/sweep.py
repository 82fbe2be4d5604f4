"""A Hydra multirun as one MLflow parent run with every job's run as its child.

Registered in ``conf/hydra/default.yaml``. ``on_multirun_start`` opens the parent (tagged with the
sweep id and the sweep's overrides) and puts its id in ``MLFLOW_PARENT_RUN_ID``, which every job's
run tags as ``mlflow.parentRunId`` (basic launcher: the jobs run in this process). The parent ends
FINISHED when the sweep ends, with the count of failed jobs as a tag; a failed job is a FAILED
child and the sweep goes on. A sweep that Hydra itself aborts (e.g. an override that does not
compose for a later job) ends its parent FAILED at exit instead of leaving it RUNNING.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.tracking.mlflow_run import ensure_experiment, git_commit, resolve_tracking_uri

PARENT_ENV = "MLFLOW_PARENT_RUN_ID"
SWEEP_ENV = "SWEEP_ID"


class MlflowSweep(Callback):
    """Hydra callback: parent run per multirun. Single runs (no ``-m``) are left alone."""

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.jobs = {"done": 0, "failed": 0}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        uri = resolve_tracking_uri(config.logger.tracking_uri)
        self.client = MlflowClient(tracking_uri=uri)
        experiment = ensure_experiment(self.client, config.logger.experiment_name, uri)
        sweep_id = Path(config.hydra.sweep.dir).name
        overrides = " ".join(config.hydra.overrides.task)
        run = self.client.create_run(
            experiment,
            run_name=f"sweep {sweep_id}",
            tags={
                "sweep_id": sweep_id,
                "sweep.overrides": overrides,
                "sweep.command": "python -m src.train -m " + overrides,
                "mlflow.source.git.commit": git_commit(),
                "mlflow.source.name": "src.train (multirun)",
            },
        )
        self.run_id = run.info.run_id
        os.environ[PARENT_ENV], os.environ[SWEEP_ENV] = self.run_id, sweep_id
        atexit.register(self._abandon)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        failed = job_return.status == JobStatus.FAILED or _is_nan(job_return)
        self.jobs["failed" if failed else "done"] += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        self.client.set_tag(self.run_id, "sweep.jobs_failed", str(self.jobs["failed"]))
        self.client.set_tag(self.run_id, "sweep.jobs_finished", str(self.jobs["done"]))
        self.client.set_terminated(self.run_id, "FINISHED")
        os.environ.pop(PARENT_ENV, None)
        os.environ.pop(SWEEP_ENV, None)
        self.run_id = None

    def _abandon(self) -> None:
        """At exit without ``on_multirun_end``: Hydra aborted the sweep."""
        if self.run_id is None:
            return
        self.client.set_tag(self.run_id, "error", "the sweep was aborted; see the console")
        self.client.set_terminated(self.run_id, "FAILED")
        self.run_id = None


def _is_nan(job_return: Any) -> bool:
    """``src.train`` returns NaN for a job that failed on bad input (its run is FAILED)."""
    if job_return.status != JobStatus.COMPLETED:
        return False
    value = job_return.return_value
    return isinstance(value, float) and value != value
