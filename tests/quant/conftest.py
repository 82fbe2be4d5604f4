"""Every test here runs small networks: one torch thread (restored after each)."""

import pytest

from src.core.threads import torch_threads


@pytest.fixture(autouse=True)
def _one_thread():
    """Thread hand-offs cost more than the work on tensors this small."""
    with torch_threads(1):
        yield
