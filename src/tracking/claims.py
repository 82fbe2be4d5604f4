"""Exclusive claims held in the tracking store itself, for jobs that share nothing else.

Parallel jobs of a sweep that need the same baseline must train it once: one claims it, the others
wait and then reuse it. A lock file works only where the jobs share a disk; jobs on other nodes
(SLURM, Ray) share only the store. Every MLflow backend (SQLite, PostgreSQL, a server in front of
either) enforces one thing atomically: an experiment's name is unique. So a claim is an
experiment named ``.claims/<name>``, tagged with its holder (``process``: host:pid) and a
``heartbeat`` it refreshes; creating it takes the claim, renaming and deleting it gives it back.
A holder that is gone (its pid dead on this host, or silent for ``STALE_S``) is broken by the
next job that wants the claim (:func:`src.tracking.liveness.orphan_reason`). On a server with
authentication only the claim's creator may rename it, and the server grants that right after
creating it (lost if it dies in between): a claim that cannot be broken gets a successor whose
name every job derives alike (:func:`_successor`). Each try carries a token, so a create that
went through but whose reply was lost (the client retried it) is recognised as this job's.

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
from src.tracking.health import DENIED
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
        The seconds spent waiting for a live holder to give it back (0.0 when none held it:
        a free claim, or a dead holder's taken over).

    Raises:
        ClaimTimeout: A live holder kept it for more than ``timeout_s`` seconds.
    """
    experiment_id, waited_s = _acquire(client, name, time.monotonic() + timeout_s, poll_s)
    try:
        with Heartbeat(client, None, experiment_id=experiment_id):
            yield waited_s
    finally:
        _release(client, experiment_id, name)


def _acquire(client: MlflowClient, name: str, deadline: float, poll_s: float) -> tuple[str, float]:
    """Create the claim's experiment, breaking a dead holder's; the experiment id and the
    seconds spent waiting for a live holder."""
    token, waiting_since = uuid.uuid4().hex, None
    while True:
        tags = {
            schema.PROCESS: process_tag(),
            schema.HEARTBEAT: f"{time.time():.0f}",
            schema.CLAIM_TOKEN: token,
        }
        try:
            return client.create_experiment(PREFIX + name, tags=tags), _since(waiting_since)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        held = client.get_experiment_by_name(PREFIX + name)
        if held is None:  # given back in between
            continue
        if held.tags.get(schema.CLAIM_TOKEN) == token:  # ours: the reply to our create was lost
            if _writable(client, held.experiment_id):
                return held.experiment_id, _since(waiting_since)
            name = _successor(name, held, "the server lost this user's right to it")
            continue
        holder = held.tags.get(schema.PROCESS, "?")
        dead = orphan_reason(held.tags, held.creation_time)
        if dead is not None:
            log.warning("claim %s: its holder %s is gone (%s); taking it over", name, holder, dead)
            if not _release(client, held.experiment_id, name):
                name = _successor(name, held, "this user may not break it")
        elif time.monotonic() > deadline:
            raise ClaimTimeout(
                f"{name} is still held by {holder} after the wait allowed; "
                "raise trainer.baseline_wait_s, or stop that job"
            )
        else:
            if waiting_since is None:
                log.info("waiting for %s, held by %s", name, holder)
                waiting_since = time.monotonic()
            time.sleep(poll_s)


def _since(started: float | None) -> float:
    return 0.0 if started is None else time.monotonic() - started


def _successor(name: str, held, why: str) -> str:
    """The claim that stands in for ``held``, which nobody can give back (on a server with
    authentication, renaming or deleting an experiment needs a right on it: the creator's,
    which the server grants after creating it and can lose if it dies in between). Every job
    that finds ``held`` unbreakable derives the same name, so the successor is exclusive too."""
    log.warning(
        "claim %s cannot be given back (%s); claiming %s~%s instead (an admin may delete "
        "experiment %s)", name, why, name, held.experiment_id, held.experiment_id,
    )  # fmt: skip
    return f"{name}~{held.experiment_id}"


def _writable(client: MlflowClient, experiment_id: str) -> bool:
    """Whether this user may write the claim (refresh its heartbeat, give it back)."""
    try:
        client.set_experiment_tag(experiment_id, schema.HEARTBEAT, f"{time.time():.0f}")
    except MlflowException as err:
        if err.error_code in DENIED:
            return False
        raise
    return True


def _release(client: MlflowClient, experiment_id: str, name: str) -> bool:
    """Free the name (a deleted experiment keeps its name in MLflow, so rename it first);
    False where this user may not rename it (a server with authentication)."""
    try:
        client.rename_experiment(experiment_id, f"{PREFIX}released/{name}/{uuid.uuid4().hex}")
    except MlflowException as err:  # already given back, or broken by another job
        return err.error_code not in DENIED
    try:  # the name is free; deleting only tidies (it needs MANAGE on a server with auth)
        client.delete_experiment(experiment_id)
    except MlflowException:
        pass
    return True
