"""Runs whose process is gone: found and marked FAILED, never left RUNNING or counted.

A process killed with SIGKILL (the OOM killer, ``scancel --signal=KILL``, a lost node) cannot mark
its own run. So every open run says who runs it (``process``: host and pid) and keeps a
``heartbeat`` tag fresh from a daemon thread. :func:`reap_orphans`, called when a run starts and
when the leaderboard reads the store, marks FAILED, with the reason, every RUNNING run whose
process is known dead (same host, pid gone) or whose heartbeat is older than ``stale_s``.

Example:
    >>> with Heartbeat(client, run_id): train()
    >>> reap_orphans(store)            # -> ["<run id>", ...]
"""

from __future__ import annotations

import os
import socket
import threading
import time

from mlflow.tracking import MlflowClient

from src.core import schema

INTERVAL_S = 30.0
STALE_S = 600.0  # 20 missed beats: a process that is merely busy still beats from its thread


def process_tag() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Refresh a ``heartbeat`` tag every ``interval_s`` seconds while in the block.

    Args:
        client: The store's client.
        run_id: The run whose tag it is (or None with ``experiment_id``: an experiment's tag,
            which is how a claim, :mod:`src.tracking.claims`, beats).
    """

    def __init__(
        self,
        client: MlflowClient,
        run_id: str | None,
        interval_s: float = INTERVAL_S,
        experiment_id: str | None = None,
    ):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mlflow-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._set()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._set()
            except Exception:  # a store hiccup must not kill the run; the next beat retries
                pass

    def _set(self) -> None:
        now = f"{time.time():.0f}"
        if self.run_id is not None:
            self.client.set_tag(self.run_id, schema.HEARTBEAT, now)
        else:
            self.client.set_experiment_tag(self.experiment_id, schema.HEARTBEAT, now)


def reap_orphans(store, stale_s: float = STALE_S) -> list[str]:
    """Mark FAILED every RUNNING run whose process is gone; the ids marked."""
    reaped = []
    for run in store.search([f"attributes.status = '{schema.RUNNING}'"]):
        reason = orphan_reason(run.data.tags, run.info.start_time, stale_s)
        if reason is None:
            continue
        store.client.set_tag(run.info.run_id, schema.ERROR, f"orphaned: {reason}")
        store.client.set_terminated(run.info.run_id, "FAILED")
        reaped.append(run.info.run_id)
    return reaped


def orphan_reason(tags: dict, start_ms: int | None, stale_s: float = STALE_S) -> str | None:
    """Why a RUNNING run with these tags is an orphan, or None while its process may live."""
    host, _, pid = tags.get(schema.PROCESS, "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"its process {host}:{pid} is gone"
    beat = tags.get(schema.HEARTBEAT)
    last = float(beat) if beat else (start_ms or 0) / 1000
    if time.time() - last > stale_s:
        return f"no heartbeat for {time.time() - last:.0f} s (its process was killed or lost)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
