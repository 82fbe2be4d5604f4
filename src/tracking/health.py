"""Is the tracking store usable? Asked before a run starts, answered in seconds.

Left to MLflow, an unreachable store costs minutes: its HTTP client retries with exponential
back-off (277 s measured against a server that is not listening), and a SQLite file that cannot be
written retries its lock (117 s), both ending in a hundred lines of traceback. This check fails in
at most ``timeout`` seconds with one line that names the store and the two ways to point at
another (``MLFLOW_TRACKING_URI``, ``logger.tracking_uri``).
"""

from __future__ import annotations

import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from src.core.errors import UserError

TIMEOUT_S = 5.0
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
FIX = "start it or fix it, or point MLFLOW_TRACKING_URI (or logger.tracking_uri) at another store"


class StoreUnreachable(UserError):
    """The tracking store cannot be reached or written; the message says which and what to do."""


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
    """An MLflow server answers ``GET /health`` with 200."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code}"
    except (OSError, ValueError) as err:  # refused, unknown host, timeout, bad URL
        reason = str(getattr(err, "reason", err))
    raise StoreUnreachable(f"no MLflow server answers at {uri} ({reason}); {FIX}")


def _check_port(uri: str, host: str, port: int | None, timeout: float) -> None:
    """A database URI (postgresql://...): its port accepts a connection."""
    if port is None:
        return  # a scheme we do not know the port of: MLflow will say
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        safe = uri.replace(f"//{urlparse(uri).netloc}", f"//{host}:{port}")  # no password
        raise StoreUnreachable(f"the MLflow store {safe} does not answer ({err}); {FIX}") from None
