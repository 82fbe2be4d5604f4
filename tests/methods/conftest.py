"""Every test here runs tiny models: one torch thread (tests/conftest.py restores the count)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Thread hand-offs cost more than the work on tensors this small; the errors measured in
    test_methods.py are the same on one thread and two."""
    torch.set_num_threads(1)
