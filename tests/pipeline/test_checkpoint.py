"""The random state a training checkpoint carries (src/pipeline/checkpoint.py)."""

import torch

from src.pipeline.checkpoint import RngState


def test_cuda_generators_are_saved_and_put_back_where_training_used_a_gpu(monkeypatch):
    """On a GPU a VAE's noise comes from the CUDA generator: a resumed run must draw what an
    uninterrupted one would have (faked here: CI has no GPU)."""
    saved_state, restored = [torch.tensor([1, 2, 3], dtype=torch.uint8)], []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved_state)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    checkpoint = {}
    callback = RngState()
    callback.on_save_checkpoint(None, None, checkpoint)
    assert checkpoint[RngState.KEY]["cuda"] is saved_state
    callback.on_load_checkpoint(None, None, checkpoint)
    callback.on_train_epoch_start(None, None)
    assert restored == [saved_state]


def test_a_checkpoint_without_cuda_state_resumes_on_the_cpu_as_before():
    checkpoint = {}
    RngState().on_save_checkpoint(None, None, checkpoint)
    state = checkpoint[RngState.KEY]
    assert state["cuda"] == [] or torch.cuda.is_initialized()
    older = {RngState.KEY: {k: v for k, v in state.items() if k != "cuda"}}  # earlier versions
    callback = RngState()
    callback.on_load_checkpoint(None, None, older)
    before = torch.get_rng_state()
    torch.rand(3)
    callback.on_train_epoch_start(None, None)
    assert torch.equal(torch.get_rng_state(), before)  # the CPU generator is put back
