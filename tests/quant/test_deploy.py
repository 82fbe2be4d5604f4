"""Float twins of eager int8 variants: ``python -m pytest tests/quant/test_deploy.py``."""

import pytest
import torch
from torch import nn

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.models.gru import DecomposedGRU
from src.quant.deploy import MatMulLinear, float_twin


class Calibration:
    def __init__(self, shape):
        self.batches = [{"x": torch.randn(*shape)} for _ in range(2)]

    def calibration_dataloader(self):
        return self.batches


def _outputs(model, x):
    with torch.inference_mode():
        out = model.eval()(x)
    return torch.utils._pytree.tree_flatten(out)[0]


def dyad_variant(method: str):
    """(input batch, dyad_tiny compressed by ``method``), calibrated on random batches."""
    torch.manual_seed(0)
    model = create_model("dyad_tiny").eval()
    x = torch.randn(4, 128, len(model.config.channels))
    context = MethodContext(data=Calibration(x.shape))
    return x, apply_method(model, method_config({"name": method}), context)


@pytest.mark.parametrize("method", ["dynamic", "static"])
def test_dyad_twin_is_float_and_gives_the_int8_answer(method):
    x, variant = dyad_variant(method)
    twin = float_twin(variant)
    assert twin.mode == method
    if method == "dynamic":  # torch.ao's fused int8 GRU comes back as the float nn.GRU
        assert sorted(twin.int8_grus) == ["decoder_rnn", "encoder_rnn"]
        assert isinstance(twin.model.encoder_rnn, nn.GRU)
    else:  # a decomposed GRU keeps its structure, its projections twinned
        assert twin.int8_grus == [] and isinstance(twin.model.encoder_rnn, DecomposedGRU)
        assert "encoder_rnn.cells.0.ih.module" in twin.int8_modules
    assert not any(p.is_quantized for p in twin.model.parameters())
    got, want = _outputs(twin.model, x), _outputs(variant, x)
    # Same weights; only the activations' int8 rounding of the variant is missing.
    for g, w in zip(got, want, strict=True):  # an untrained model, random calibration: loose
        assert (g - w).abs().mean() <= 0.2 * w.abs().mean() + 1e-3


def test_cnn_static_twin_keeps_conv_geometry_and_relu():
    torch.manual_seed(0)
    model = create_model("cnn_tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    variant = apply_method(
        model, method_config({"name": "static"}), MethodContext(data=Calibration(x.shape))
    )
    twin = float_twin(variant)
    assert twin.mode == "static" and twin.int8_modules
    kinds = {type(m) for m in twin.model.modules()}
    assert nn.Conv2d in kinds and MatMulLinear in kinds
    got, want = _outputs(twin.model, x)[0], _outputs(variant, x)[0]
    assert torch.allclose(got, want, atol=0.1 * want.abs().max().item())
    assert (got - _outputs(model, x)[0]).abs().max() > 0  # it carries the int8 weights


def test_a_float_model_comes_back_as_a_copy():
    model = create_model("cnn_tiny")
    twin = float_twin(model)
    assert twin.mode is None and twin.int8_modules == [] and twin.model is not model
