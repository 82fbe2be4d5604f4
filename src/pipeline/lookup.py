"""Which run a job continues or reuses: queries of the store about a job's own runs.

``find_resumable``: a training (baseline) or fine-tuning (method) of this job that stopped with a
checkpoint (resume it, in its own run). ``finished_job``: this very job, FINISHED (reuse it).
``find_baseline``: the newest finished baseline of this config whose model file is not known
broken (reuse it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mlflow.entities import Run

from src.core import schema
from src.core.errors import UserError, first_line
from src.pipeline.checkpoint import LAST, last_checkpoint
from src.pipeline.specs import RunSpec
from src.tracking.liveness import reap_orphans
from src.tracking.store import FINISHED, RunStore, tag_clause

log = logging.getLogger(__name__)


class ResumeRefused(Exception):  # noqa: N818 (its name is the tag schema.RESUME_REFUSED reads)
    """A stopped run that cannot take this attempt (its record conflicts with it): said in one
    line, the run stays FAILED with this as its error, and the job trains afresh."""


def find_resumable(spec: RunSpec, store: RunStore, fingerprint: str):
    """The newest run of this job that stopped (KILLED, FAILED) on this data with a checkpoint
    on this machine, when ``trainer.resume=auto``; else None. A baseline is found by its
    baseline config, a method run by its job key (its fine-tuning checkpoints: one folder per
    fine-tuning, :class:`src.pipeline.fit.CheckpointedFits`)."""
    if spec.trainer.resume != "auto":
        return None
    runs = baseline_runs(spec, store) if spec.is_baseline else job_runs(spec, store)
    run = stopped_with_state(
        runs,
        fingerprint,
        lambda run: has_checkpoint(run.data.tags.get(schema.CHECKPOINTS), spec.is_baseline),
    )
    if run is not None:
        log.info("resuming run %s from %s", run.info.run_id, run.data.tags[schema.CHECKPOINTS])
    return run


def stopped_with_state(runs, fingerprint: str, has_state: Callable[[Run], bool]):
    """The first of ``runs`` that stopped (KILLED, FAILED) on the data of ``fingerprint`` and
    left what a resume starts from (``has_state``); one that refused a resume once is skipped:
    it said why, and its job started afresh since."""
    for run in runs:
        tags = run.data.tags
        if tags.get(schema.ERROR, "").startswith(schema.RESUME_REFUSED):
            continue
        if (
            run.info.status in schema.STOPPED
            and tags.get(schema.DATA_FINGERPRINT) == fingerprint
            and has_state(run)
        ):
            return run
    return None


def has_checkpoint(folder: str | None, baseline: bool) -> bool:
    """A finished ``last.ckpt`` in ``folder`` (a baseline's training) or in one of its
    ``fit<n>/`` folders (a method's fine-tunings)."""
    if not folder:
        return False
    if baseline:
        return last_checkpoint(folder) is not None
    return any(Path(folder).glob(f"fit*/{LAST}"))


def job_runs(spec: RunSpec, store: RunStore) -> list:
    """Every run of this very job (its ``job_key``; any status), newest first."""
    try:
        return store.search(
            [tag_clause(schema.JOB_KEY, spec.job_key)],
            spec.tracking.experiment,
            ["attributes.start_time DESC"],
        )
    except UserError:  # no experiment yet
        return []


def finished_job(spec: RunSpec, store: RunStore):
    """The newest FINISHED run of this very job (its ``job_key``: the same config, method and
    version, code), whichever sweep it ran in; None when there is none or ``rerun`` is set."""
    if spec.rerun:
        return None
    return store.find(spec.tracking.experiment, **{schema.JOB_KEY: spec.job_key})


def find_baseline(spec: RunSpec, store: RunStore):
    """The newest finished baseline of this config whose artifact is not known broken; a newer
    one that is broken is skipped, and the log says so."""
    for run in baseline_runs(spec, store):
        if run.info.status != FINISHED:
            continue
        broken = run.data.tags.get(schema.ARTIFACT_BROKEN)
        if broken is None:
            return run
        log.warning("skipping baseline run %s: %s", run.info.run_id, broken)
    return None


def check_trainer_alive(spec: RunSpec, store: RunStore, since: float) -> None:
    """Raise if a baseline training of this config ended unfinished after ``since`` (while this
    job waited for it): training it again here would most likely fail the same way, once per
    waiting job. A trainer killed outright is first found by :func:`reap_orphans`."""
    reap_orphans(store)
    for run in baseline_runs(spec, store):
        if run.info.status in schema.STOPPED and (run.info.end_time or 0) >= since * 1000:
            error = run.data.tags.get(schema.ERROR, "no error recorded")
            raise UserError(
                f"the baseline of this config was being trained by run {run.info.run_id}, which "
                f"ended {run.info.status} while this job waited for it ({first_line(error)}); "
                "fix that and rerun (a baseline with trainer.resume=auto resumes from its last "
                "checkpoint)"
            )


def baseline_runs(spec: RunSpec, store: RunStore) -> list:
    """Every baseline run of this config (any status), newest first; none before the
    experiment exists."""
    key = {schema.METHOD: schema.BASELINE, schema.BASELINE_KEY: spec.baseline_key}
    clauses = [tag_clause(k, v) for k, v in key.items()]
    try:
        return store.search(clauses, spec.tracking.experiment, ["attributes.start_time DESC"])
    except UserError:  # no experiment yet
        return []
