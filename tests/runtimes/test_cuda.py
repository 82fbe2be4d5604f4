"""The GPU runtime: ``python -m pytest tests/runtimes/test_cuda.py`` (on a GPU machine too).

``OnDevice`` is also checked on the CPU device, where CI runs: what it does besides moving
tensors (delegating to the eager model, feeding a half model in its dtype) is device-free.
"""

import pytest
import torch

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.models.util import input_dtype
from src.runtimes.base import DeployContext, RuntimeUnavailable, deploy, max_abs_diff
from src.runtimes.cuda import OnDevice

GPU = torch.cuda.is_available()
METHODS = {
    "baseline": {"name": "baseline"},
    "fp16": {"name": "fp16", "kind": "half", "dtype": "fp16"},
    "bf16": {"name": "bf16", "kind": "half", "dtype": "bf16"},
}


def _context(tmp_path) -> DeployContext:
    return DeployContext(torch.randn(2, 3, 32, 32), (), tmp_path)


def _variant(name: str, model: str = "cnn_tiny", **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    base = create_model(model, **kwargs).eval()
    return apply_method(base, method_config(METHODS[name]), MethodContext())


@pytest.mark.skipif(GPU, reason="checks the one-line skip where there is no GPU")
def test_without_a_gpu_the_runtime_is_one_line_and_the_run_goes_on(tmp_path):
    with pytest.raises(RuntimeUnavailable, match="no CUDA device") as err:
        deploy("cuda", create_model("cnn_tiny"), _context(tmp_path))
    assert "\n" not in str(err.value)


def test_int8_variants_stay_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the check comes first
    variant = apply_method(
        create_model("cnn_tiny").eval(), method_config({"name": "dynamic"}), MethodContext()
    )
    with pytest.raises(RuntimeUnavailable, match="CPU only"):
        deploy("cuda", variant, _context(tmp_path))


def test_the_wrapper_answers_like_the_eager_model_and_delegates_to_it():
    """DyAD's evaluation calls ``split_target`` on whatever it scores; a bf16 variant is fed
    fp32 snippets (on the CPU device here: the same code path as on a GPU)."""
    variant = _variant("bf16", "dyad_tiny")
    wrapped = OnDevice(variant, torch.device("cpu"), variant)
    x = torch.randn(4, 16, 7)
    assert torch.equal(wrapped.split_target(x)[1], variant.split_target(x)[1])
    assert input_dtype(wrapped) == torch.bfloat16
    assert max_abs_diff(variant, wrapped, [x]) == 0.0  # fp32 inputs, cast for both


@pytest.mark.skipif(not GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_float_variants_run_on_the_gpu_and_answer_on_the_host(method, tmp_path):
    variant = _variant(method)
    deployed = deploy("cuda", variant, _context(tmp_path))
    assert " on " in deployed.form and next(variant.parameters()).device.type == "cpu"
    x = torch.randn(3, 3, 32, 32)
    assert deployed.module(x).device.type == "cpu"
    scale = variant(x.to(input_dtype(variant))).float().abs().max().item()
    assert max_abs_diff(variant, deployed.module, [x]) < 0.05 * scale


@pytest.mark.skipif(not GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_dyad_variant_on_the_gpu_keeps_its_answer(method, tmp_path):
    """The GRU model in every float precision: weights in one chunk, fp32 snippets in."""
    variant = _variant(method, "dyad_tiny")
    deployed = deploy("cuda", variant, DeployContext(torch.randn(2, 16, 7), (), tmp_path))
    grus = [m for m in deployed.module.model.modules() if isinstance(m, torch.nn.RNNBase)]
    assert grus and all(m.weight_ih_l0.is_cuda for m in grus)
    x = torch.randn(8, 16, 7)
    # fp32: cuDNN's GRU sums in another order than the CPU's (1.3e-4 seen on an H200)
    tolerance = {"baseline": 1e-3, "fp16": 2e-2, "bf16": 1e-1}[method]
    assert max_abs_diff(variant, deployed.module, [x]) < tolerance
    assert torch.equal(deployed.module.split_target(x)[1], variant.split_target(x)[1])
