"""Claims held in the store: ``python -m pytest tests/tracking/test_claims.py``."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_ALREADY_EXISTS

from src.core import schema
from src.tracking.claims import PREFIX, ClaimTimeout, claim
from src.tracking.store import RunStore


def _dead_pid() -> str:
    return subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()


def test_a_held_claim_waits_then_times_out_and_a_released_one_is_free(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    with claim(store.client, "b", timeout_s=60) as waited:
        assert waited == 0.0  # free: nobody to wait for
        held = store.client.get_experiment_by_name(PREFIX + "b")
        assert held.tags[schema.PROCESS].endswith(f":{os.getpid()}")
        assert held.experiment_id not in store.experiment_ids()  # never listed as the user's
        started = time.monotonic()
        with pytest.raises(ClaimTimeout, match="still held by .*trainer.baseline_wait_s"):
            with claim(store.client, "b", timeout_s=0.3, poll_s=0.05):
                pass
        assert time.monotonic() - started < 5
    with claim(store.client, "b", timeout_s=1) as waited:  # the name is free again
        assert waited == 0.0


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    tags = {schema.PROCESS: f"{socket.gethostname()}:{_dead_pid()}", schema.HEARTBEAT: "0"}
    store.client.create_experiment(PREFIX + "b", tags=tags)
    with claim(store.client, "b", timeout_s=5, poll_s=0.05):
        held = store.client.get_experiment_by_name(PREFIX + "b")
        assert held.tags[schema.PROCESS] != tags[schema.PROCESS]


def test_the_wait_for_a_live_holder_is_what_the_claim_reports(tmp_path):
    import threading

    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    held, waited = threading.Event(), []

    def hold():
        with claim(store.client, "b", timeout_s=5):
            held.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    with claim(store.client, "b", timeout_s=60, poll_s=0.05) as seconds:
        waited.append(seconds)
    holder.join()
    assert waited[0] > 0  # it waited for the live holder, and says so


def _hold(uri: str, log: str, name: str) -> None:
    store = RunStore(uri)
    with claim(store.client, name, timeout_s=120, poll_s=0.05):
        with open(log, "a") as out:
            out.write(f"in {time.monotonic()}\n")
        time.sleep(0.5)
        with open(log, "a") as out:
            out.write(f"out {time.monotonic()}\n")


def test_processes_racing_for_one_claim_hold_it_one_at_a_time(tmp_path):
    uri, log = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "log"
    RunStore(uri)  # the schema first: racing to create it is the store lock's job
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_hold, args=(uri, str(log), "b")) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    events = [line.split()[0] for line in Path(log).read_text().splitlines()]
    assert events == ["in", "out"] * 3  # never two inside at once


class _Server:
    """A store client behaving as an authenticated server that died mid-request: the first
    create goes through but its reply is lost (the retry finds the name taken; with
    ``lose_right`` so is its creator's right to it), and renaming or tagging an experiment
    listed in ``refused`` is PERMISSION_DENIED."""

    def __init__(self, client, lose_reply: bool, refused: set[str], lose_right=False) -> None:
        self.client, self.lose_reply, self.refused = client, lose_reply, refused
        self.lose_right = lose_right

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create_experiment(self, name, tags=None):
        experiment_id = self.client.create_experiment(name, tags=tags)
        if self.lose_reply:
            self.lose_reply = False
            if self.lose_right:
                self.refused.add(experiment_id)
            raise MlflowException("taken", error_code=RESOURCE_ALREADY_EXISTS)
        return experiment_id

    def _check(self, experiment_id):
        if experiment_id in self.refused:
            raise MlflowException("no right to it", error_code=PERMISSION_DENIED)

    def set_experiment_tag(self, experiment_id, key, value):
        self._check(experiment_id)
        self.client.set_experiment_tag(experiment_id, key, value)

    def rename_experiment(self, experiment_id, name):
        self._check(experiment_id)
        self.client.rename_experiment(experiment_id, name)


def test_a_claim_whose_create_reply_was_lost_is_recognised_as_ours(tmp_path):
    """Seen in the soak: the server died after creating the claim; the job waited 10 minutes
    for itself."""
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    server = _Server(store.client, lose_reply=True, refused=set())
    with claim(server, "b", timeout_s=1, poll_s=0.05) as waited:
        assert waited == 0.0  # never waited for itself
        held = store.client.get_experiment_by_name(PREFIX + "b")
        assert held.tags[schema.PROCESS].endswith(f":{os.getpid()}")
    assert store.client.get_experiment_by_name(PREFIX + "b") is None  # given back


def test_a_claim_nobody_may_break_gets_a_successor_every_job_finds(tmp_path):
    """Seen in the soak: a dead holder's claim this user may not rename (the server lost the
    creator's right with the reply) made the waiting jobs spin forever."""
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    tags = {schema.PROCESS: f"{socket.gethostname()}:{_dead_pid()}", schema.HEARTBEAT: "0"}
    stuck = store.client.create_experiment(PREFIX + "b", tags=tags)
    server = _Server(store.client, lose_reply=False, refused={stuck})
    with claim(server, "b", timeout_s=5, poll_s=0.05) as waited:
        assert waited == 0.0  # a dead holder is not waited for
        assert store.client.get_experiment_by_name(f"{PREFIX}b~{stuck}") is not None
        with pytest.raises(ClaimTimeout, match=f"b~{stuck} is still held"):  # exclusive still
            with claim(server, "b", timeout_s=0.3, poll_s=0.05):
                pass
    with claim(server, "b", timeout_s=5, poll_s=0.05):  # and free again once given back
        pass
    # our own create, its reply lost, and no right to it: the successor, at once
    store = RunStore(f"sqlite:///{tmp_path}/other.db")
    server = _Server(store.client, lose_reply=True, refused=set(), lose_right=True)
    with claim(server, "c", timeout_s=5, poll_s=0.05) as waited:
        assert waited == 0.0
        (own,) = [e for e in store.client.search_experiments() if e.name == PREFIX + "c"]
        assert store.client.get_experiment_by_name(f"{PREFIX}c~{own.experiment_id}")
