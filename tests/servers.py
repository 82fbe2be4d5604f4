"""Servers a test needs, started on a free localhost port from installed packages, and stopped.

with mlflow_server(f"sqlite:///{tmp}/mlflow.db", tmp / "artifacts") as server:
    run(..., env={"MLFLOW_TRACKING_URI": server.uri})
    server.kill()       # the server dies mid-run
    server.start()      # and comes back on the same port and store
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# MLflow's client retries a dead server for minutes by default; a test wants the error now.
FAST_FAILING_CLIENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on ``backend`` (a database URI), serving artifacts from ``artifacts``;
    with ``auth`` (a folder), MLflow's basic-auth app as ``make server`` runs it
    (:func:`src.tracking.access.server_env`: a generated admin credential and key)."""

    def __init__(self, backend: str, artifacts: Path, log: Path, auth: Path | None = None) -> None:
        self.backend, self.artifacts, self.log, self.auth = backend, artifacts, log, auth
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        """Start it and wait until ``/health`` answers."""
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        env = dict(os.environ)
        if self.auth is not None:
            from src.tracking.access import server_env

            cmd += ["--app-name", "basic-auth"]
            env.update(server_env(self.auth))
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
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
def mlflow_server(
    backend: str, artifacts: Path, auth: Path | None = None
) -> Iterator[MlflowServer]:
    """A running :class:`MlflowServer`, stopped when the block ends."""
    artifacts.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(backend, artifacts, artifacts.parent / "mlflow-server.log", auth)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def postgres_bin() -> Path | None:
    """The folder of the installed PostgreSQL's server programs (initdb, pg_ctl), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port> with database ``mlflow``, set up
    as ``make postgres`` does: password authentication (scram-sha-256) with a generated password
    (:func:`src.tracking.access.postgres`), which clients find in ``PGPASSFILE``.

    PostgreSQL refuses to run as root; as root the cluster is the ``postgres`` user's, in a
    folder of its own outside the test's (pytest's tmp folders are private to root).
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="compresslab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "log"  # the server's output (pg_ctl -l), from start and restart
        self.pgpass = self.root / "secret" / "pgpass"
        self.uri = f"postgresql://mlflow@127.0.0.1:{self.port}/mlflow"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, program: str, *args: str) -> None:
        cmd = [*self.as_user, "env", f"PGPASSFILE={self.pgpass}", str(self.bin / program), *args]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        from src.tracking.access import postgres as generate

        password, self.pgpass = generate(self.root / "secret")
        if self.as_user:  # the cluster's owner reads them; root (the tests) reads anything
            for path in (password.parent, password, self.pgpass):
                shutil.chown(path, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "mlflow", "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256", f"--pwfile={password}", "-E", "UTF8",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "start",
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "mlflow", "mlflow")

    def restart(self) -> None:
        """Restart the cluster (fast shutdown: open connections are cut), same port."""
        # -l as at start: a server started without it keeps this call's output pipe open
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A running :class:`Postgres`, removed when the block ends; skips the test without one."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("COMPRESSLAB_REQUIRE_POSTGRES"):
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    database = Postgres(bin_dir)
    database.start()
    old = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(database.pgpass)  # this process, and the servers it starts
    try:
        yield database
    finally:
        database.stop()
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
