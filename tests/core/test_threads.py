import pytest
import torch

from src.core.threads import torch_threads


def test_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other) as inside:
        assert inside == other == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_restores_after_an_exception_and_none_leaves_it():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None) as inside:
        assert inside == before
        torch.set_num_threads(1 if before != 1 else 2)  # what the block sets is undone
    assert torch.get_num_threads() == before
