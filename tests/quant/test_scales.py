"""A static variant's own quantization parameters: ``pytest tests/quant/test_scales.py``."""

import pytest
import torch
from torch import nn

from src.quant import backend
from src.quant.scales import static_layers
from tests.quant.nets import CONV_INPUT, GRU_INPUT, ConvNet, GruNet, build, inputs


def _static(cls, regions, shape) -> nn.Module:
    model = build(cls)
    prepared = backend.prepare_static(model, regions, backend.qconfig("minmax", True), qat=False)
    with torch.inference_mode():
        prepared(inputs(shape, seed=1))
    return backend.convert(prepared)


def _linear_from(layer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The layer recomputed from its parameters alone: input fake-quantized with the recorded
    scale, the int8 weight times its per-channel scales, output requantized."""
    xq = torch.fake_quantize_per_tensor_affine(x, layer.input_scale, layer.input_zero_point, 0, 255)
    scales = torch.as_tensor(layer.weight_scale).reshape(-1, 1)
    weight = torch.as_tensor(layer.weight_int8).float() * scales
    y = nn.functional.linear(xq, weight, bias)
    return torch.fake_quantize_per_tensor_affine(
        y, layer.output_scale, layer.output_zero_point, 0, 255
    )


def test_the_parameters_recompute_what_the_eager_layer_computes():
    model = _static(GruNet, ["head"], GRU_INPUT)
    x = inputs(GRU_INPUT, seed=2)
    (layer,) = static_layers(model, x)
    assert layer.name == "head.module" and layer.weight_scale.shape == (6,)  # per channel
    seen = []
    head = model.head.module
    hook = head.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    with torch.inference_mode():
        model(x)
    hook.remove()
    (xq, out), bias = seen[0], head.bias()
    got = _linear_from(layer, xq.dequantize(), bias)
    assert torch.allclose(got, out.dequantize(), atol=layer.output_scale * 1.01)
    assert torch.equal(torch.as_tensor(layer.weight), head.weight().dequantize())


def test_every_static_conv_is_read_and_dynamic_modules_are_not():
    model = _static(ConvNet, backend.default_regions(build(ConvNet)), CONV_INPUT)
    layers = static_layers(model, inputs(CONV_INPUT, seed=2))
    convs = [layer for layer in layers if layer.weight.ndim == 4]
    assert len(convs) == 2 and all(layer.output_zero_point == 0 for layer in convs)  # fused ReLU
    dynamic = backend.quantize_dynamic(build(GruNet), {nn.GRU, nn.Linear}, "int8")
    assert static_layers(dynamic, inputs(GRU_INPUT)) == []


class _TwoScales(nn.Module):
    """One int8 Linear fed inputs quantized two ways: no single QDQ form holds it."""

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x):
        a = self.linear(torch.quantize_per_tensor(x, 0.1, 128, torch.quint8))
        return a, self.linear(torch.quantize_per_tensor(x, 0.2, 128, torch.quint8))


def test_a_layer_quantized_two_ways_is_refused():
    linear = torch.ao.nn.quantized.Linear(4, 3)
    with pytest.raises(ValueError, match="linear ran on inputs quantized 2 ways"):
        static_layers(_TwoScales(linear), torch.randn(2, 4))
