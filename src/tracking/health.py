"""Is the tracking store usable? Asked before a run starts, answered in seconds.

Left to MLflow, an unreachable store costs minutes: its HTTP client retries with exponential
back-off (277 s measured against a server that is not listening), and a SQLite file that cannot be
written retries its lock (117 s), both ending in a hundred lines of traceback. This check fails in
at most ``timeout`` seconds with one line that names the store and the two ways to point at
another (``MLFLOW_TRACKING_URI``, ``logger.tracking_uri``).
"""

from __future__ import annotations

import base64
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import read_mlflow_creds

from src.core.errors import UserError

TIMEOUT_S = 5.0
SEARCH = "api/2.0/mlflow/experiments/search?max_results=1"  # a read every user may make
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
FIX = "start it or fix it, or point MLFLOW_TRACKING_URI (or logger.tracking_uri) at another store"


class StoreUnreachable(UserError):
    """The tracking store cannot be reached or written; the message says which and what to do."""


DENIED = ("PERMISSION_DENIED", "UNAUTHENTICATED")  # a server's access control said no


def denied(uri: str, experiment: str, err: MlflowException) -> UserError:
    """The one line for a user the server will not let write to ``experiment`` (no secret in
    it: the user's name only)."""
    user = read_mlflow_creds().username or "anonymous"
    return UserError(
        f"user {user} may not write to experiment {experiment} on {uri} ({err.error_code}): ask "
        f"the server's admin for EDIT (python -m src.tracking.access grant {user} {experiment} "
        "edit), or set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD to a user who may"
    )


def check_store(uri: str, write: bool = True, timeout: float = TIMEOUT_S) -> None:
    """Raise :class:`StoreUnreachable` unless the store at ``uri`` answers within ``timeout``
    (and, for a SQLite file and ``write``, can be created and written)."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+")[0]
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///")), write, timeout)
    elif scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif parsed.hostname:
        _check_port(uri, parsed.hostname, parsed.port or DEFAULT_PORTS.get(scheme), timeout)


def _check_sqlite(path: Path, write: bool, timeout: float) -> None:
    try:
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=timeout) as db:
            if write:  # take the write lock and give it back: writable, and not held forever
                db.execute("BEGIN IMMEDIATE")
                db.rollback()
            else:
                db.execute("PRAGMA schema_version")
    except (OSError, sqlite3.Error) as err:
        raise StoreUnreachable(
            f"the MLflow store sqlite:///{path} cannot be {'written' if write else 'read'} "
            f"({err}); {FIX}"
        ) from None


def _check_server(uri: str, timeout: float) -> None:
    """An MLflow server answers ``GET /health`` with 200, and its API with what this client's
    credentials allow (a server with access control answers 401 to a missing or wrong one)."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            if response.status == 200:
                return _check_credentials(uri, timeout)
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code}"
    except (OSError, ValueError) as err:  # refused, unknown host, timeout, bad URL
        reason = str(getattr(err, "reason", err))
    raise StoreUnreachable(f"no MLflow server answers at {uri} ({reason}); {FIX}")


def _check_credentials(uri: str, timeout: float) -> None:
    """One authenticated read, as MLflow's client would send it: 401 is one line that says
    what to set (the user's name at most, never the password)."""
    creds = read_mlflow_creds()
    request = urllib.request.Request(f"{uri.rstrip('/')}/{SEARCH}")
    if creds.username and creds.password:
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError as err:
        if err.code != 401:
            return  # anything else is MLflow's to report
        who = f"refused user {creds.username}" if creds.username else "asks who you are"
        raise StoreUnreachable(
            f"the MLflow server at {uri} {who} (HTTP 401): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or put the credentials file from its admin at "
            "~/.mlflow/credentials"
        ) from None
    except (OSError, ValueError):
        return


def _check_port(uri: str, host: str, port: int | None, timeout: float) -> None:
    """A database URI (postgresql://...): its port accepts a connection."""
    if port is None:
        return  # a scheme we do not know the port of: MLflow will say
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        safe = uri.replace(f"//{urlparse(uri).netloc}", f"//{host}:{port}")  # no password
        raise StoreUnreachable(f"the MLflow store {safe} does not answer ({err}); {FIX}") from None
