"""One MLflow run per training run, owned by us from creation to FINISHED or FAILED.

Lightning's ``MLFlowLogger`` marks a run FINISHED as soon as ``fit`` returns, before evaluation
and artifacts; a crash after that would leave a "finished" run without results. So we create the
run ourselves, hand its id to the logger (``src.pipeline.fit``, whose ``finalize`` is
neutralised), and set the final status in :func:`tracked_run`, which marks it FAILED on any
exception. No Lightning here: reports and the leaderboard import this package without torch.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.core import schema
from src.core.errors import first_line
from src.core.lifecycle import Interrupted, phase_of
from src.core.paths import git_commit
from src.tracking.health import StoreUnreachable, check_store
from src.tracking.liveness import Heartbeat, process_tag
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
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

    def log_dataset(
        self, name: str, digest: str, source: str, facts: dict, context: str, profile: dict
    ) -> None:
        """The data the run read, as an MLflow dataset input (the run page's "Datasets"):
        ``digest`` its content fingerprint, ``source`` where it was read, ``profile`` what the
        data set is whichever run reads it, ``context`` its role for the run and ``facts`` what
        this run made of it (fold, seed, sizes per role).

        MLflow keeps one dataset per experiment, name and digest, shared by every run that logs
        it, so a run's own facts go on its input's tags, never the shared profile. MLflow
        creates that dataset by looking before inserting: when two processes log a new one at
        once, the later insert breaks the unique key, and the same call again links the row the
        other made (the one retry).
        """
        dataset = Dataset(
            name=name,
            digest=digest,
            source_type="local",
            source=json.dumps({"uri": source}),
            profile=json.dumps(profile, default=str),
        )
        tags = [InputTag(schema.DATASET_CONTEXT, context)]
        tags += [InputTag(k, str(v)) for k, v in facts.items()]
        inputs = [DatasetInput(dataset, tags)]
        try:
            self.client.log_inputs(self.run_id, datasets=inputs)
        except MlflowException as err:
            if not _lost_insert_race(err):
                raise
            log.info("dataset %s was created by another run at the same moment: linking it", name)
            self.client.log_inputs(self.run_id, datasets=inputs)

    def set_tags(self, tags: dict[str, object]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_table(self, name: str, frame: pd.DataFrame, folder: str = schema.TABLES_DIR) -> None:
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


def _lost_insert_race(err: MlflowException) -> bool:
    """Whether the store refused a row another writer inserted first (SQLite, PostgreSQL and
    MySQL word a unique-key violation so)."""
    text = str(err).lower()
    return "unique constraint" in text or "duplicate key" in text or "duplicate entry" in text


@contextmanager
def tracked_run(
    store: RunStore, experiment: str, run_name: str, tags: dict, resume: str | None = None
) -> Iterator[TrackedRun]:
    """Open a run (or reopen ``resume``, an unfinished one, as RUNNING again); FINISHED on
    normal exit, KILLED on a stop signal (tagged with the signal and the phase it stopped),
    FAILED (with the error as a tag) on any other exception."""
    all_tags = {
        schema.RUN_NAME: run_name,
        schema.SOURCE_NAME: "src.train",
        schema.GIT_COMMIT: git_commit(),
        schema.PROCESS: process_tag(),
        **tags,
    }
    client = store.client
    if resume is None:
        run_id = store.create_run(experiment, run_name, all_tags)
    else:
        run_id = resume
        _reopen(client, run_id, all_tags)
    handle = TrackedRun(client, run_id, store.uri)
    try:
        with Heartbeat(client, run_id):  # a SIGKILLed run is found by its silence
            yield handle
    except Interrupted as stop:  # pre-empted or Ctrl+C: KILLED, saying when
        tags = {
            schema.ERROR: str(stop),
            schema.STOP_SIGNAL: stop.signal_name,
            schema.STOP_PHASE: stop.phase,
        }
        if _store_answers(store, run_id, stop):
            _end(handle, "KILLED", tags)
        raise
    except BaseException as err:
        if not _store_answers(store, run_id, err):
            raise _store_lost(store, run_id, err) from err
        _end(handle, "FAILED", {schema.ERROR: f"{type(err).__name__}: {err}"[:5000]})
        raise
    client.set_terminated(run_id, "FINISHED")


def _end(handle: TrackedRun, status: str, tags: dict) -> None:
    handle.set_tags(tags)
    handle.client.set_terminated(handle.run_id, status)


def _store_answers(store: RunStore, run_id: str, err: BaseException) -> bool:
    """Can the run still be marked? Asked in seconds: a store that went away mid-run would
    otherwise cost MLflow's retries (minutes) once more, for a status it cannot write."""
    try:
        check_store(store.uri, write=False)
    except StoreUnreachable:
        log.error("run %s could not be marked: %s", run_id, first_line(err))
        return False
    return True


def _store_lost(store: RunStore, run_id: str, err: BaseException) -> StoreUnreachable:
    """The one line for a store that stopped answering while the run was open."""
    during = phase_of(err) or "the run"
    return StoreUnreachable(
        f"the MLflow store {store.uri} stopped answering during {during} "
        f"({first_line(err)}); run {run_id} keeps what it logged: once the store answers "
        "again, rerun the same command (the run is then marked FAILED as orphaned, and a "
        "baseline with trainer.resume=auto resumes from its last checkpoint)"
    )


def _reopen(client: MlflowClient, run_id: str, tags: dict) -> None:
    """An unfinished run RUNNING again: why it stopped moves to ``resumed.from``."""
    run = client.get_run(run_id)
    stopped = [run.data.tags.get(k) for k in (schema.STOP_PHASE, schema.ERROR)]
    count = int(run.data.tags.get(schema.RESUMED, "0")) + 1
    for key in (schema.ERROR, schema.STOP_SIGNAL, schema.STOP_PHASE):
        if key in run.data.tags:
            client.delete_tag(run_id, key)
    client.update_run(run_id, status="RUNNING")
    extra = {schema.RESUMED: str(count), schema.RESUMED_FROM: next((s for s in stopped if s), "")}
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in {**tags, **extra}.items()])
