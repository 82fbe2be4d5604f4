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

from src.core import schema
from src.core.paths import git_commit
from src.tracking.liveness import Heartbeat, process_tag
from src.tracking.store import RunStore


class MlflowSweep(Callback):
    """Hydra callback: parent run per multirun. Single runs (no ``-m``) are left alone."""

    def __init__(self) -> None:
        self.store: RunStore | None = None
        self.run_id: str | None = None
        self.jobs = {"done": 0, "failed": 0}
        self.heartbeat: Heartbeat | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        """Open the parent run. Hydra turns a callback's exception into a warning and would run
        the sweep without its parent; so a failure is put where every job fails on it instead
        (:func:`src.cli.specs.run_spec`), as one line, before training anything."""
        os.environ.pop(schema.SWEEP_ERROR_ENV, None)
        try:
            self._open_parent(config)
        except Exception as err:  # the store is unreachable, locked, or refuses the run
            message = f"the sweep could not open its MLflow parent run: {err}".splitlines()[0]
            os.environ[schema.SWEEP_ERROR_ENV] = message
            self.run_id = None

    def _open_parent(self, config: Any) -> None:
        self.store = RunStore(config.logger.tracking_uri)
        sweep_id = Path(config.hydra.sweep.dir).name
        overrides = " ".join(config.hydra.overrides.task)
        self.run_id = self.store.create_run(
            config.logger.experiment_name,
            f"sweep {sweep_id}",
            {
                schema.SWEEP_ID: sweep_id,
                schema.SWEEP_OVERRIDES: overrides,
                schema.SWEEP_COMMAND: "python -m src.train -m " + overrides,
                schema.GIT_COMMIT: git_commit(),
                schema.SOURCE_NAME: "src.train (multirun)",
                schema.PROCESS: process_tag(),
            },
        )
        self.heartbeat = Heartbeat(self.store.client, self.run_id).__enter__()
        os.environ[schema.PARENT_ENV], os.environ[schema.SWEEP_ENV] = self.run_id, sweep_id
        atexit.register(self._abandon)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        failed = job_return.status == JobStatus.FAILED or _is_nan(job_return)
        self.jobs["failed" if failed else "done"] += 1

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        self._stop_heartbeat()
        client = self.store.client
        client.set_tag(self.run_id, schema.SWEEP_JOBS_FAILED, str(self.jobs["failed"]))
        client.set_tag(self.run_id, schema.SWEEP_JOBS_FINISHED, str(self.jobs["done"]))
        client.set_terminated(self.run_id, "FINISHED")
        sweep_id = os.environ.get(schema.SWEEP_ENV, "")
        print(
            f"sweep {sweep_id}: {self.jobs['done']} job(s) finished, {self.jobs['failed']} "
            f"failed (parent run {self.run_id})\nits leaderboard: python -m src.leaderboard "
            f"sweep_id={sweep_id}",
            flush=True,
        )
        for key in (schema.PARENT_ENV, schema.SWEEP_ENV, schema.SWEEP_ERROR_ENV):
            os.environ.pop(key, None)
        self.run_id = None

    def _abandon(self) -> None:
        """At exit without ``on_multirun_end``: Hydra aborted the sweep."""
        if self.run_id is None:
            return
        self._stop_heartbeat()
        client = self.store.client
        client.set_tag(self.run_id, schema.ERROR, "the sweep was aborted; see the console")
        client.set_terminated(self.run_id, "FAILED")
        self.run_id = None

    def _stop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.__exit__(None, None, None)
            self.heartbeat = None


def _is_nan(job_return: Any) -> bool:
    """A job that failed on bad input returns NaN (``src.cli.entry``; its run is FAILED)."""
    if job_return.status != JobStatus.COMPLETED:
        return False
    value = job_return.return_value
    return isinstance(value, float) and value != value
