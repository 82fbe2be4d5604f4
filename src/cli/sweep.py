"""A Hydra multirun as one MLflow parent run with every job's run as its child.

Registered in ``conf/hydra/default.yaml``. ``on_multirun_start`` opens the parent (tagged with the
sweep id, the sweep folder's name, and the sweep's overrides); every job's run tags it as
``mlflow.parentRunId``. A job finds it from its own Hydra config (:func:`job_sweep`), so the link
holds under every launcher: in this process (basic), in local worker processes (joblib), in
submitit jobs, on SLURM or Ray nodes that share only the tracking store. The parent ends
FINISHED when the sweep ends, with the count of failed jobs as a tag; a failed job is a FAILED
child and the sweep goes on. A sweep that Hydra itself aborts (e.g. an override that does not
compose for a later job) ends its parent FAILED at exit instead of leaving it RUNNING.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import RunTag
from omegaconf import OmegaConf

from src.core import schema
from src.core.errors import ConfigError, UserError
from src.core.paths import git_commit
from src.tracking.liveness import Heartbeat, process_tag, reap_orphans
from src.tracking.store import RunStore


class MlflowSweep(Callback):
    """Hydra callback: parent run per multirun. Single runs (no ``-m``) are left alone."""

    def __init__(self) -> None:
        self.store: RunStore | None = None
        self.run_id: str | None = None
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
        module = "src.search" if "search" in config else "src.train -m"  # search: its own sweeper
        study = search_study(config)
        self.run_id = self._resumed_search(study, sweep_id) if study else None
        if self.run_id is None:
            tags = {
                schema.SWEEP_ID: sweep_id,
                schema.SWEEP_OVERRIDES: overrides,
                schema.SWEEP_COMMAND: f"python -m {module} {overrides}",
                schema.GIT_COMMIT: git_commit(),
                schema.SOURCE_NAME: f"{module.split()[0]} (multirun)",
                schema.PROCESS: process_tag(),
            }
            if study:
                tags[schema.SEARCH_STUDY] = study
            self.run_id = self.store.create_run(
                config.logger.experiment_name, f"sweep {sweep_id}", tags
            )
        self.heartbeat = Heartbeat(self.store.client, self.run_id).__enter__()
        os.environ[schema.PARENT_ENV], os.environ[schema.SWEEP_ENV] = self.run_id, sweep_id
        atexit.register(self._abandon)

    def _resumed_search(self, study: str, sweep_id: str) -> str | None:
        """The parent run of the newest search of ``study``, reopened for this sweep (a rerun
        of the command resumes it); None when there is none.

        Raises:
            ConfigError: That search is still running in a live process.
        """
        reap_orphans(self.store)  # a killed search's parent is FAILED first, not "running"
        run = self.store.find(status=None, **{schema.SEARCH_STUDY: study})  # parents only
        if run is None:
            return None
        run_id, tags = run.info.run_id, run.data.tags
        if run.info.status == schema.RUNNING:
            raise ConfigError(
                f"this search ({study}) is running in {tags.get(schema.PROCESS, 'a process')} "
                f"(parent run {run_id}); wait for it, or pass search.resume=never"
            )
        self.store.client.update_run(run_id, status=schema.RUNNING)
        resumed = int(tags.get(schema.SEARCH_RESUMED, "0")) + 1
        reopened = {
            schema.SWEEP_ID: sweep_id,  # its jobs and board find it by this sweep's id now
            schema.SEARCH_RESUMED: resumed,
            schema.PROCESS: process_tag(),
        }
        self.store.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in reopened.items()])
        print(f"resuming search {study} in its parent run {run_id} (resumed {resumed}x)")
        return run_id

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        """Where the job ran (this process, a worker, another node): its outcome becomes a tag
        of the parent run, which is all the launching process can count at the end."""
        failed = job_return.status == JobStatus.FAILED or _is_nan(job_return)
        parent_run_id, _ = job_sweep(config.logger.tracking_uri)
        if parent_run_id is None:
            return
        client = (self.store or RunStore(config.logger.tracking_uri)).client  # None in workers
        key = f"{schema.SWEEP_JOB_PREFIX}{config.hydra.job.num}"
        client.set_tag(parent_run_id, key, "failed" if failed else "done")

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        self._stop_heartbeat()
        client = self.store.client
        outcomes = [
            v
            for k, v in client.get_run(self.run_id).data.tags.items()
            if k.startswith(schema.SWEEP_JOB_PREFIX)
        ]
        done, failed = outcomes.count("done"), outcomes.count("failed")
        client.set_tag(self.run_id, schema.SWEEP_JOBS_FAILED, str(failed))
        client.set_tag(self.run_id, schema.SWEEP_JOBS_FINISHED, str(done))
        client.set_terminated(self.run_id, "FINISHED")
        sweep_id = os.environ.get(schema.SWEEP_ENV, "")
        print(
            f"sweep {sweep_id}: {done} job(s) finished, {failed} failed (parent run "
            f"{self.run_id})\nits leaderboard: python -m src.leaderboard sweep_id={sweep_id}",
            flush=True,
        )
        for key in (schema.PARENT_ENV, schema.SWEEP_ENV, schema.SWEEP_ERROR_ENV):
            os.environ.pop(key, None)
        self.run_id = None

    def __getstate__(self) -> dict:
        """What a launcher ships to its workers with the job: nothing of the parent's
        process (its client and heartbeat thread cannot be pickled, and belong here)."""
        return {"store": None, "run_id": None, "heartbeat": None}

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


def search_study(config: Any) -> str | None:
    """A search's study name: a digest of its experiment, its composed ``search`` settings and
    its command-line overrides, but the budget (``search.trials``, ``search.timeout``,
    ``search.stop_at_goals``) and ``search.resume``/``search.storage``, so that rerunning the
    command, or rerunning it with a larger budget, continues the study (``search.resume=never``:
    a new one); None for a sweep that is no search."""
    if "search" not in config:
        return None
    budget = ("resume", "storage", "trials", "timeout", "stop_at_goals")
    skip = (*(f"search.{key}" for key in budget), "hydra")
    kept = sorted(o for o in config.hydra.overrides.task if not o.lstrip("+~").startswith(skip))
    # the search's settings as composed (conf/search.yaml may change between two commands)
    settings = OmegaConf.to_container(config.search, resolve=True)
    settings = {k: v for k, v in settings.items() if k not in budget}
    text = "\n".join(
        [str(config.logger.experiment_name), json.dumps(settings, sort_keys=True), *kept]
    )
    name = f"search-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if config.search.get("resume", "auto") == "never":
        name = f"{name}-{uuid.uuid4().hex[:8]}"
    return name


def job_sweep(tracking_uri: str) -> tuple[str | None, str | None]:
    """``(parent run id, sweep id)`` of the job running now; ``(None, None)`` outside a sweep.

    The sweep id is the sweep folder's name, which every launcher hands its jobs in their Hydra
    config; the parent is the open run tagged with it. The environment of the process that
    opened the parent is used only where a job runs in that process (basic launcher, or jobs
    composed in process).

    Raises:
        ConfigError: A sweep whose parent is not open in the job's store (one line, the reason
            when this process knows it).
    """
    if os.environ.get(schema.SWEEP_ERROR_ENV):
        raise ConfigError(os.environ[schema.SWEEP_ERROR_ENV])
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return os.environ.get(schema.PARENT_ENV) or None, os.environ.get(schema.SWEEP_ENV) or None
    sweep_id = Path(HydraConfig.get().sweep.dir).name
    if os.environ.get(schema.SWEEP_ENV) == sweep_id and os.environ.get(schema.PARENT_ENV):
        return os.environ[schema.PARENT_ENV], sweep_id
    try:
        return RunStore.open(tracking_uri).sweep_parent(sweep_id, running=True), sweep_id
    except UserError as err:
        raise ConfigError(
            f"this job's sweep {sweep_id} has no open parent run in {tracking_uri} ({err}); "
            "the sweep's launching process could not open it (see its console), or the job "
            "writes to another store (set MLFLOW_TRACKING_URI where the job runs)"
        ) from None


def _is_nan(job_return: Any) -> bool:
    """A job that failed on bad input returns NaN (``src.cli.entry``; its run is FAILED)."""
    if job_return.status != JobStatus.COMPLETED:
        return False
    value = job_return.return_value
    return isinstance(value, float) and value != value
