"""The GPU runtime: ``python -m pytest tests/runtimes/test_cuda.py`` (on a GPU machine too)."""

import pytest
import torch

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.runtimes.base import DeployContext, RuntimeUnavailable, deploy, max_abs_diff

GPU = torch.cuda.is_available()


def _context(tmp_path) -> DeployContext:
    return DeployContext(torch.randn(2, 3, 32, 32), (), tmp_path)


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


@pytest.mark.skipif(not GPU, reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["baseline", "fp16", "bf16"])
def test_float_variants_run_on_the_gpu_and_answer_on_the_host(method, tmp_path):
    torch.manual_seed(0)
    variant = apply_method(
        create_model("cnn_tiny").eval(), method_config({"name": method}), MethodContext()
    )
    deployed = deploy("cuda", variant, _context(tmp_path))
    assert "on " in deployed.form and next(variant.parameters()).device.type == "cpu"
    x = torch.randn(3, 3, 32, 32)
    assert deployed.module(x).device.type == "cpu"
    scale = variant(x).float().abs().max().item()
    assert max_abs_diff(variant, deployed.module, [x]) < 0.05 * scale
