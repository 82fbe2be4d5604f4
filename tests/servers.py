"""Servers a test needs, started on a free localhost port from installed packages, and stopped.

with mlflow_server(f"sqlite:///{tmp}/mlflow.db", tmp / "artifacts") as server:
    run(..., env={"MLFLOW_TRACKING_URI": server.uri})
    server.kill()       # the server dies mid-run
    server.start()      # and comes back on the same port and store
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# MLflow's client retries a dead server for minutes by default; a test wants the error now.
FAST_FAILING_CLIENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on ``backend`` (a database URI), serving artifacts from ``artifacts``."""

    def __init__(self, backend: str, artifacts: Path, log: Path) -> None:
        self.backend, self.artifacts, self.log = backend, artifacts, log
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        """Start it and wait until ``/health`` answers."""
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend,
               "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1"]  # fmt: skip
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server never answered: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server and its workers (the whole process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def mlflow_server(backend: str, artifacts: Path) -> Iterator[MlflowServer]:
    """A running :class:`MlflowServer`, stopped when the block ends."""
    artifacts.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(backend, artifacts, artifacts.parent / "mlflow-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
