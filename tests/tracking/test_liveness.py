"""Runs whose process is gone: ``python -m pytest tests/tracking/test_liveness.py``."""

import socket
import subprocess
import sys
import time

from src.core import schema
from src.tracking.liveness import Heartbeat, orphan_reason, process_tag, reap_orphans
from src.tracking.store import RunStore


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_of_a_dead_process_or_silent_heartbeat_is_an_orphan():
    now_ms = time.time() * 1000
    host = socket.gethostname()
    assert "gone" in orphan_reason({schema.PROCESS: f"{host}:{_dead_pid()}"}, now_ms)
    alive = {schema.PROCESS: process_tag(), schema.HEARTBEAT: f"{time.time():.0f}"}
    assert orphan_reason(alive, now_ms) is None
    silent = {schema.PROCESS: "other-node:1", schema.HEARTBEAT: f"{time.time() - 3600:.0f}"}
    assert "no heartbeat" in orphan_reason(silent, now_ms)
    assert orphan_reason({schema.PROCESS: "other-node:1"}, now_ms) is None  # just started


def test_reaping_marks_orphans_failed_and_leaves_live_runs(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    dead = store.create_run("e", "dead", {schema.PROCESS: f"{socket.gethostname()}:{_dead_pid()}"})
    live = store.create_run("e", "live", {schema.PROCESS: process_tag()})
    with Heartbeat(store.client, live, interval_s=0.05):
        time.sleep(0.2)
        assert reap_orphans(store) == [dead]
    assert store.get(dead).info.status == "FAILED"
    assert "orphaned" in store.get(dead).data.tags[schema.ERROR]
    assert store.get(live).info.status == "RUNNING"
    assert float(store.get(live).data.tags[schema.HEARTBEAT]) > time.time() - 5
