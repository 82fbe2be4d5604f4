"""Every test here runs small networks: one torch thread (tests/conftest.py restores the count)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Thread hand-offs cost more than the work on tensors this small."""
    torch.set_num_threads(1)
