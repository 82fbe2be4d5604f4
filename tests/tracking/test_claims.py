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
        assert waited < 1
        held = store.client.get_experiment_by_name(PREFIX + "b")
        assert held.tags[schema.PROCESS].endswith(f":{os.getpid()}")
        assert held.experiment_id not in store.experiment_ids()  # never listed as the user's
        started = time.monotonic()
        with pytest.raises(ClaimTimeout, match="still held by .*trainer.baseline_wait_s"):
            with claim(store.client, "b", timeout_s=0.3, poll_s=0.05):
                pass
        assert time.monotonic() - started < 5
    with claim(store.client, "b", timeout_s=1) as waited:  # the name is free again
        assert waited < 1


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    tags = {schema.PROCESS: f"{socket.gethostname()}:{_dead_pid()}", schema.HEARTBEAT: "0"}
    store.client.create_experiment(PREFIX + "b", tags=tags)
    with claim(store.client, "b", timeout_s=5, poll_s=0.05):
        held = store.client.get_experiment_by_name(PREFIX + "b")
        assert held.tags[schema.PROCESS] != tags[schema.PROCESS]


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
