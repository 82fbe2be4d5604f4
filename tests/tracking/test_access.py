"""Secrets of the group server, written owner-only and never twice; a client's missing or
wrong credential is one line (against a stand-in server that answers 401)."""

from __future__ import annotations

import configparser
import http.server
import threading

import pytest

from src.tracking.access import add_user, credentials_text, postgres, prepare, server_env
from src.tracking.health import StoreUnreachable, check_store


def mode(path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_the_admin_credential_is_generated_once_and_kept_owner_only(tmp_path):
    ini = prepare(tmp_path / "auth")
    config = configparser.ConfigParser()
    config.read(ini)
    password = config["mlflow"]["admin_password"]
    assert len(password) >= 24 and password not in ("password", "password1234")
    assert config["mlflow"]["default_permission"] == "READ"
    assert mode(ini) == "0o600" and mode(tmp_path / "auth") == "0o700"
    assert prepare(tmp_path / "auth").read_text() == ini.read_text()  # a restart keeps it
    env = server_env(tmp_path / "auth")
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(ini)
    assert (
        env == server_env(tmp_path / "auth") and mode(tmp_path / "auth" / "flask.secret") == "0o600"
    )


def test_postgres_password_files_are_owner_only_and_agree(tmp_path):
    password, pgpass = postgres(tmp_path / "pg")
    assert mode(password) == mode(pgpass) == "0o600"
    assert pgpass.read_text().strip().endswith(":mlflow:" + password.read_text().strip())
    assert postgres(tmp_path / "pg") == (password, pgpass) and password.read_text() == (
        postgres(tmp_path / "pg")[0].read_text()
    )


def test_a_credentials_file_is_mlflows_own_format(tmp_path):
    config = configparser.ConfigParser()
    config.read_string(credentials_text("alice", "s3cret"))
    assert dict(config["mlflow"]) == {
        "mlflow_tracking_username": "alice",
        "mlflow_tracking_password": "s3cret",
    }


def test_adding_a_user_needs_the_servers_config(tmp_path):
    with pytest.raises(Exception, match="run make server"):
        add_user("http://127.0.0.1:9", tmp_path / "none", "bob", [])


class _Locked(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        ok = self.path == "/health" or self.headers.get("Authorization")
        self.send_response(200 if ok and self.path == "/health" else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def locked_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Locked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_missing_or_wrong_credential_is_one_line_without_the_password(locked_server, monkeypatch):
    monkeypatch.setenv("HOME", "/nonexistent")
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(StoreUnreachable) as missing:
        check_store(locked_server, write=False)
    assert "asks who you are (HTTP 401)" in str(missing.value)
    assert "MLFLOW_TRACKING_USERNAME" in str(missing.value) and "\n" not in str(missing.value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-one")
    with pytest.raises(StoreUnreachable) as wrong:
        check_store(locked_server, write=False)
    assert "refused user alice (HTTP 401)" in str(wrong.value)
    assert "wrong-one" not in str(wrong.value)
