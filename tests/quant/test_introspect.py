"""How packed int8 / fp16 modules store their weights: ``pytest tests/quant/test_introspect.py``."""

import pytest
import torch
from torch import nn

from src.quant import backend
from src.quant.introspect import (
    fp16_linear_keys,
    holds_packed_weights,
    is_metadata,
    is_quantized,
    packed_rnns,
    packed_tensors,
    precision,
)
from tests.quant.nets import GRU_INPUT, GruNet, build, inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _dynamic(dtype: str) -> nn.Module:
    return backend.quantize_dynamic(build(GruNet), {nn.GRU, nn.Linear}, dtype)


def _static_head() -> nn.Module:
    prepared = backend.prepare_static(
        build(GruNet), ["head"], backend.qconfig("minmax", True), qat=False
    )
    with torch.inference_mode():
        prepared(inputs(GRU_INPUT))
    return backend.convert(prepared)


def test_precision_names_how_each_module_stores_its_weights():
    linear = nn.Linear(4, 4)
    assert precision(linear) == "fp32" and precision(nn.ReLU()) == "fp32"
    assert precision(nn.Linear(4, 4).half()) == "fp16"
    assert precision(nn.Linear(4, 4).bfloat16()) == "bf16"
    int8, fp16 = _dynamic("int8"), _dynamic("fp16")
    assert {precision(int8.gru), precision(int8.head)} == {"int8"}
    assert {precision(fp16.gru), precision(fp16.head)} == {"fp16"}
    assert precision(_static_head().head.module) == "int8"


def test_only_torch_ao_packed_modules_count_as_quantized():
    int8 = _dynamic("int8")
    assert is_quantized(int8.gru) and is_quantized(int8.embed)
    assert holds_packed_weights(int8.gru) and holds_packed_weights(int8.embed)
    assert not is_quantized(nn.Linear(4, 4)) and not holds_packed_weights(nn.Linear(4, 4))
    prepared = backend.prepare_static(
        build(GruNet), ["head"], backend.qat_qconfig(per_channel=True), qat=True
    )
    fake = prepared.head.module  # QAT Linear: float weights, fake quantization around them
    assert not is_quantized(fake) and is_metadata(fake.weight_fake_quant)
    assert not is_metadata(fake) and is_metadata(torch.ao.quantization.MinMaxObserver())


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_packed_tensors_unpack_every_gru_and_linear_weight(dtype):
    reference = build(GruNet)
    model = _dynamic(dtype)
    for name in ("embed", "gru", "head"):
        floats = list(getattr(reference, name).parameters())
        packed = list(packed_tensors(getattr(model, name)))
        assert sorted(t.numel() for t in packed) == sorted(p.numel() for p in floats), name
    weights = [t for t in packed_tensors(model.gru) if t.dim() == 2]
    originals = [p for n, p in reference.gru.named_parameters() if n.startswith("weight")]
    for got, want in zip(weights, originals, strict=True):
        values = got.dequantize() if got.is_quantized else got
        step = want.abs().max() / 127.5 if dtype == "int8" else want.abs().max() * 2**-11
        assert (values - want).abs().max() <= step / 2 + 1e-7  # rounding to its grid, no more
    assert list(packed_tensors(nn.Linear(4, 4))) == []


def test_packed_rnns_and_fp16_keys_name_what_a_state_dict_cannot_hold_as_is():
    fp16 = _dynamic("fp16")
    assert set(packed_rnns(fp16)) == {"gru"} and packed_rnns(build(GruNet)) == {}
    keys = fp16_linear_keys(fp16)
    assert keys == {f"{n}._packed_params._packed_params" for n in ("embed", "head")}
    assert keys <= set(fp16.state_dict()) and fp16_linear_keys(_dynamic("int8")) == set()
