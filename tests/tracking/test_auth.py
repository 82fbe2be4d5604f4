"""The group server's door: MLflow's basic-auth app as ``make server`` runs it, users added with
``python -m src.tracking.access``, clients with credentials the MLflow way, and PostgreSQL with a
password (slow tier): ``python -m pytest tests/tracking/test_auth.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from src.tracking.access import postgres as generate_postgres
from src.tracking.access import prepare
from tests.conftest import FAST, ROOT
from tests.servers import mlflow_server, postgres

pytestmark = pytest.mark.slow

TRAIN = [
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=20",
    *FAST,
    "trainer.enable_progress_bar=false",
]


def cli(home: Path, module: str, *args: str, uri: str, env=None) -> subprocess.CompletedProcess:
    """``python -m <module>`` as a user whose ``~`` is ``home`` (their ~/.mlflow/credentials)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env = {**clean, "HOME": str(home), "MLFLOW_TRACKING_URI": uri, **(env or {})}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def user_home(tmp: Path, name: str, credentials: Path) -> Path:
    """A home whose ~/.mlflow/credentials is the file the admin handed over."""
    home = tmp / f"home-{name}"
    (home / ".mlflow").mkdir(parents=True)
    (home / ".mlflow" / "credentials").write_text(credentials.read_text())
    return home


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def test_only_invited_users_get_in_and_readers_cannot_write(tiny_root, tmp_path):
    auth = tmp_path / "auth"
    ini = prepare(auth)
    assert (
        oct(ini.stat().st_mode & 0o777) == "0o600" and oct(auth.stat().st_mode & 0o777) == "0o700"
    )
    assert "admin_password = password" not in ini.read_text()  # generated, never a stock default
    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "artifacts", auth) as server:
        uri = server.uri
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=5")
        assert anonymous.value.code == 401

        access = [sys.executable, "-m", "src.tracking.access"]
        for name, extra in (("reader", []), ("writer", ["--edit", "battery"])):
            added = subprocess.run(
                [*access, "add-user", name, "--dir", str(auth), "--uri", uri, *extra],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            assert f"user {name} added" in added.stdout
        files = {n: auth / "users" / f"{n}.credentials" for n in ("reader", "writer")}
        assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files.values())
        reader = user_home(tmp_path, "reader", files["reader"])
        writer = user_home(tmp_path, "writer", files["writer"])
        nobody = tmp_path / "home-nobody"
        nobody.mkdir()

        data = [f"data.root={tiny_root}", f"paths.data_dir={tmp_path}/data"]
        started = time.monotonic()
        refused = cli(nobody, "src.train", *TRAIN, *data, uri=uri)
        line = one_line(refused)
        assert f"the MLflow server at {uri} asks who you are (HTTP 401)" in line
        assert "MLFLOW_TRACKING_USERNAME" in line and time.monotonic() - started < 10
        wrong = cli(
            nobody,
            "src.train",
            *TRAIN,
            *data,
            uri=uri,
            env={"MLFLOW_TRACKING_USERNAME": "writer", "MLFLOW_TRACKING_PASSWORD": "x"},
        )
        assert "refused user writer (HTTP 401)" in one_line(wrong)
        read_only = cli(reader, "src.train", *TRAIN, *data, uri=uri)
        line = one_line(read_only)
        assert "user reader may not write to experiment battery" in line, line
        assert "training" not in read_only.stdout + read_only.stderr  # refused before any work

        sweep = cli(
            writer,
            "src.train",
            "-m",
            "+method=baseline,dynamic",
            *TRAIN,
            *data,
            f"hydra.sweep.dir={tmp_path}/sweep",
            uri=uri,
        )
        assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
        board = cli(
            reader, "src.leaderboard", f"out_dir={tmp_path}/board", "log_to_parent=false", uri=uri
        )
        assert board.returncode == 0, board.stderr[-3000:]
        assert "| dynamic |" in (tmp_path / "board" / "leaderboard.md").read_text()
        outputs = [refused, wrong, read_only, sweep, board]
    secrets = [ini.read_text().split("admin_password = ")[1].split()[0]]
    secrets += [f.read_text().split("password = ")[1].split()[0] for f in files.values()]
    logs = [p.stdout + p.stderr for p in outputs] + [(tmp_path / "mlflow-server.log").read_text()]
    # the store, its artifacts, the outputs: every file but the secrets' own
    kept = [p for p in tmp_path.rglob("*") if p.is_file() and auth not in p.parents]
    stored = [p.read_bytes() for p in kept if p.parent.name != ".mlflow"]
    for secret in secrets:
        assert all(secret not in text for text in logs)
        assert all(secret.encode() not in blob for blob in stored)


def test_postgres_asks_for_its_generated_password(tmp_path):
    password, pgpass = generate_postgres(tmp_path / "secret")
    assert oct(password.stat().st_mode & 0o777) == oct(pgpass.stat().st_mode & 0o777) == "0o600"
    with postgres() as database:
        hba = (database.data / "pg_hba.conf").read_text()
        rules = [line for line in hba.splitlines() if line and not line.startswith("#")]
        assert rules and all(line.split()[-1] == "scram-sha-256" for line in rules), rules
        env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
        psql = [
            str(database.bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(database.port),
            "-U",
            "mlflow",
            "-w",
            "-c",
            "select 1",
            "mlflow",
        ]
        denied = subprocess.run(psql, env=env, capture_output=True, text=True)
        assert denied.returncode != 0 and "password" in denied.stderr
        allowed = subprocess.run(psql, capture_output=True, text=True)
        assert allowed.returncode == 0, allowed.stderr
