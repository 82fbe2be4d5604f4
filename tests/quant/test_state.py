"""The artifact's weights: ``pytest tests/quant/test_state.py``.

A compressed model's portable state dict, saved and read back with ``weights_only=True``, loads
into the same structure rebuilt without data and answers exactly as the original.
"""

import io

import pytest
import torch
from torch import nn

from src.quant import backend
from src.quant.state import load_portable_state_dict, portable_state_dict
from tests.quant.nets import CONV_INPUT, GRU_INPUT, ConvNet, GruNet, build, inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _dynamic(dtype):
    def make(seed: int, calibrate: bool) -> nn.Module:
        return backend.quantize_dynamic(build(GruNet, seed), {nn.GRU, nn.Linear}, dtype)

    return make


def _static(qat: bool):
    def make(seed: int, calibrate: bool) -> nn.Module:
        model = build(ConvNet, seed)
        config = backend.qat_qconfig(True) if qat else backend.qconfig("histogram", True)
        with backend.quiet():
            prepared = backend.prepare_static(model, backend.default_regions(model), config, qat)
            if calibrate:  # a rebuilt structure never sees data
                prepared(inputs(CONV_INPUT))
            return backend.convert(prepared)

    return make


KINDS = {
    "dynamic-int8": (_dynamic("int8"), GRU_INPUT),
    "dynamic-fp16": (_dynamic("fp16"), GRU_INPUT),
    "static": (_static(qat=False), CONV_INPUT),
    "qat": (_static(qat=True), CONV_INPUT),
}


def _saved(model: nn.Module) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(portable_state_dict(model), buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_reloaded_weights_answer_exactly_as_the_original(kind):
    make, shape = KINDS[kind]
    original = make(seed=0, calibrate=True)
    rebuilt = make(seed=1, calibrate=False)  # other weights, uncalibrated: all comes from the file
    load_portable_state_dict(rebuilt, torch.load(_saved(original), weights_only=True))
    x = inputs(shape, seed=2)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), original(x))


def test_fp16_weights_are_stored_as_half():
    model = _dynamic("fp16")(seed=0, calibrate=False)
    state = portable_state_dict(model)
    assert state["embed._packed_params._packed_params"][0].dtype == torch.float16
    assert {w.dtype for w in state["gru.__weight_bias__"]["weight"].values()} == {torch.float16}
    # Two bytes per weight, biases kept in fp32, and each of the two Linears' (unused) output
    # scale and zero point (fp32 and int64): the file holds what the model holds.
    params = dict(GruNet().named_parameters())
    weights = sum(p.numel() for n, p in params.items() if "weight" in n)
    biases = sum(p.numel() for n, p in params.items() if "bias" in n)
    assert _tensor_bytes(state) == 2 * weights + 4 * biases + 2 * (4 + 8)


def _tensor_bytes(value) -> int:
    """Bytes of every tensor in a nested state dict."""
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(_tensor_bytes(v) for v in value)
    return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0


def test_a_state_of_another_structure_does_not_load():
    state = portable_state_dict(_dynamic("int8")(seed=0, calibrate=False))
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_portable_state_dict(build(GruNet), state)  # a float model has no packed weights
    state.pop("head._packed_params._packed_params")
    with pytest.raises(KeyError, match="head._packed_params"):  # torch's packed Linear reads it
        load_portable_state_dict(_dynamic("int8")(seed=0, calibrate=False), state)
