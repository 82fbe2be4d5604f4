"""Prepare, calibrate, convert (torch.ao eager): ``pytest tests/quant/test_backend.py``."""

import pytest
import torch
from torch import nn

from src.quant import backend
from src.quant.introspect import is_quantized
from tests.quant.nets import CONV_INPUT, GRU_INPUT, ConvNet, GruNet, build, inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _static(model: nn.Module, regions: list[str], shape, per_channel=True) -> nn.Module:
    """``model`` quantized in ``regions``, calibrated on one batch."""
    config = backend.qconfig("minmax", per_channel)
    prepared = backend.prepare_static(model, regions, config, qat=False)
    with torch.inference_mode():
        prepared(inputs(shape))
    return backend.convert(prepared)


@pytest.mark.parametrize("per_channel", [True, False])
def test_qconfig_is_7_bit_activations_and_symmetric_int8_weights(per_channel):
    config = backend.qconfig("histogram", per_channel)
    activation, weight = config.activation(), config.weight()
    assert isinstance(activation, backend.OBSERVERS["histogram"])
    assert activation.dtype == torch.quint8 and activation.reduce_range
    scheme = torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric
    assert weight.dtype == torch.qint8 and weight.qscheme == scheme


def test_qat_qconfig_fake_quantizes_7_bit_activations_and_full_int8_weights():
    config = backend.qat_qconfig(per_channel=True)
    activation, weight = config.activation(), config.weight()
    assert (activation.quant_min, activation.quant_max) == (0, 127)
    assert (weight.quant_min, weight.quant_max, weight.ch_axis) == (-128, 127, 0)
    assert weight.qscheme == torch.per_channel_symmetric


def test_default_regions_are_the_linear_and_conv_leaves_or_the_models_own():
    assert backend.default_regions(GruNet()) == ["embed", "head"]
    assert backend.default_regions(ConvNet()) == ["features.0.conv", "features.2.conv", "head"]
    model = GruNet()
    model.static_quant_regions = lambda: ["head"]
    assert backend.default_regions(model) == ["head"]


def test_fuse_blocks_folds_batch_norm_into_the_conv_and_keeps_the_answer():
    model = build(ConvNet)
    x = inputs(CONV_INPUT)
    with torch.inference_mode():
        before = model(x)
        fused = backend.fuse_blocks(model, qat=False)
        after = fused(x)
    assert isinstance(fused.features[0].bn, nn.Identity)
    assert isinstance(fused.features[0].relu, nn.Identity)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_static_quantizes_the_named_regions_only():
    model = _static(build(GruNet), ["head"], GRU_INPUT)
    assert isinstance(model.head, backend.Stubbed) and is_quantized(model.head.module)
    assert type(model.embed) is nn.Linear and type(model.gru) is nn.GRU


def test_static_cnn_is_int8_throughout_and_close_to_fp32():
    x = inputs(CONV_INPUT)
    reference = build(ConvNet)
    regions = backend.default_regions(reference)
    model = _static(build(ConvNet), regions, CONV_INPUT)
    assert all(is_quantized(model.get_submodule(f"{r}.module")) for r in regions)
    with torch.inference_mode():
        error = (model(x) - reference(x)).norm() / reference(x).norm()
    assert error < 0.03  # 7-bit activations, int8 weights: measured 0.018, bound 1.5 x that


def test_dynamic_modules_quantizes_only_the_named_ones():
    model = backend.quantize_dynamic_modules(build(GruNet), ["gru"])
    assert is_quantized(model.gru) and type(model.embed) is nn.Linear
    both = backend.quantize_dynamic(build(GruNet), {nn.GRU, nn.Linear}, "fp16")
    assert all(is_quantized(m) for m in (both.embed, both.gru, both.head))
    assert both.gru.dtype == torch.float16


def test_convert_leaves_no_observer_or_fake_quant():
    prepared = backend.prepare_static(
        build(ConvNet), ["head"], backend.qat_qconfig(per_channel=False), qat=True
    )
    prepared(inputs(CONV_INPUT))
    model = backend.convert(prepared)
    assert not model.training
    assert not any(
        isinstance(m, torch.ao.quantization.FakeQuantizeBase | torch.ao.quantization.ObserverBase)
        for m in model.modules()
    )
