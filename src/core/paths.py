"""Where the project lives and where its store is: the only module that knows either.

Entry points, configs (through the ``project_root`` and ``default_store`` resolvers the CLI
registers), the notebook and the benchmarks all ask here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE_ENV = "MLFLOW_TRACKING_URI"


def default_store_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's SQLite store ``mlruns/mlflow.db``."""
    return os.environ.get(STORE_ENV) or f"sqlite:///{ROOT}/mlruns/mlflow.db"


def git_commit() -> str:
    """The checkout's commit, with ``-dirty`` when it has uncommitted changes."""
    try:
        sha = _git("rev-parse", "HEAD", check=True)
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def code_version() -> str:
    """The code a run ran: the commit, and for a tree with uncommitted changes the hash of
    their diff (``<sha>-dirty-<diff hash>``), so two different edits never share a version."""
    commit = git_commit()
    if not commit.endswith("-dirty"):
        return commit
    try:
        diff = _git("diff", "HEAD", check=True)
    except (OSError, subprocess.SubprocessError):
        return commit
    return f"{commit}-{hashlib.sha1(diff.encode()).hexdigest()[:12]}"


def _git(*args: str, check: bool = False) -> str:
    # --no-optional-locks: ``git status`` would otherwise refresh the index under
    # .git/index.lock; a run killed meanwhile (or two jobs at once) left the user's own git
    # commands failing on that lock
    proc = subprocess.run(
        ["git", "--no-optional-locks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=check,
    )
    return proc.stdout.strip()
