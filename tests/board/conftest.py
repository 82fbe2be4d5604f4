"""Leaderboard fixtures: one demo store per module (read-only), fresh stores per test."""

from __future__ import annotations

import pytest

from tests.board.fakes import Demo, FakeStore, demo_store, new_store


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[FakeStore, Demo]:
    """The known runs of ``tests/board/fakes.py``. Treat as read-only."""
    return demo_store(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def store(tmp_path) -> FakeStore:
    """An empty store of this test's own."""
    return new_store(tmp_path / "store")
