"""Exclusive claims held in the tracking store itself, for jobs that share nothing else.

Parallel jobs of a sweep that need the same baseline must train it once: one claims it, the others
wait and then reuse it. A lock file works only where the jobs share a disk; jobs on other nodes
(SLURM, Ray) share only the store. Every MLflow backend (SQLite, PostgreSQL, a server in front of
either) enforces one thing atomically: an experiment's name is unique. So a claim is an
experiment named ``.claims/<name>``, tagged with its holder (``process``: host:pid) and a
``heartbeat`` it refreshes; creating it takes the claim, renaming and deleting it gives it back.
A holder that is gone (its pid dead on this host, or silent for ``STALE_S``) is broken by the
next job that wants the claim (:func:`src.tracking.liveness.orphan_reason`).

Example:
    >>> with claim(client, "baseline-3f2a", timeout_s=3600) as waited_s:
    ...     reuse_or_train()
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.core import schema
from src.core.errors import UserError
from src.tracking.liveness import Heartbeat, orphan_reason, process_tag

log = logging.getLogger(__name__)
PREFIX = ".claims/"  # experiments under it are claims, never listed as the user's
POLL_S = 2.0


class ClaimTimeout(UserError):
    """A claim was held by a live job for longer than the caller would wait."""


@contextmanager
def claim(
    client: MlflowClient, name: str, timeout_s: float, poll_s: float = POLL_S
) -> Iterator[float]:
    """Hold claim ``name`` for the block, waiting while a live job holds it.

    Yields:
        The seconds spent waiting for it (0 when it was free).

    Raises:
        ClaimTimeout: A live holder kept it for more than ``timeout_s`` seconds.
    """
    started = time.monotonic()
    experiment_id = _acquire(client, name, started + timeout_s, poll_s)
    try:
        with Heartbeat(client, None, experiment_id=experiment_id):
            yield time.monotonic() - started
    finally:
        _release(client, experiment_id, name)


def _acquire(client: MlflowClient, name: str, deadline: float, poll_s: float) -> str:
    """Create the claim's experiment, breaking a dead holder's; the experiment id."""
    waiting = False
    while True:
        tags = {schema.PROCESS: process_tag(), schema.HEARTBEAT: f"{time.time():.0f}"}
        try:
            return client.create_experiment(PREFIX + name, tags=tags)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        held = client.get_experiment_by_name(PREFIX + name)
        if held is None:  # given back in between
            continue
        holder = held.tags.get(schema.PROCESS, "?")
        dead = orphan_reason(held.tags, held.creation_time)
        if dead is not None:
            log.warning("claim %s: its holder %s is gone (%s); taking it over", name, holder, dead)
            _release(client, held.experiment_id, name)
        elif time.monotonic() > deadline:
            raise ClaimTimeout(
                f"{name} is still held by {holder} after the wait allowed; "
                "raise trainer.baseline_wait_s, or stop that job"
            )
        else:
            if not waiting:
                log.info("waiting for %s, held by %s", name, holder)
                waiting = True
            time.sleep(poll_s)


def _release(client: MlflowClient, experiment_id: str, name: str) -> None:
    """Free the name (a deleted experiment keeps its name in MLflow, so rename it first)."""
    try:
        client.rename_experiment(experiment_id, f"{PREFIX}released/{name}/{uuid.uuid4().hex}")
        client.delete_experiment(experiment_id)
    except MlflowException:  # already given back, or broken by another job
        pass
