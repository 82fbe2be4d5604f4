"""The model artifact's weights: a state dict that ``torch.load(weights_only=True)`` reads and that
is as small as the quantized model really is."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from src.quant.introspect import fp16_linear_keys, packed_rnns


def portable_state_dict(model: nn.Module) -> OrderedDict:
    """A state_dict loadable with ``weights_only=True`` that is as small as the model really is.

    Dynamic GRU cells hold TorchScript objects, so they are stored unpacked under
    ``<module>.__weight_bias__``. fp16 dynamic modules unpack to fp32 tensors (the reason their
    plain state_dict is no smaller than fp32's); those weights are stored as fp16, which is
    lossless because the packed weights were fp16 already.
    """
    state = model.state_dict()
    out = OrderedDict()
    packed, fp16_keys = packed_rnns(model), fp16_linear_keys(model)
    for key, value in state.items():
        if not any(key.startswith(f"{p}._all_weight_values.") for p in packed):
            out[key] = _to_half(value) if key in fp16_keys else value
    for prefix, module in packed.items():
        out[f"{prefix}.__weight_bias__"] = _half_weights(module, module._weight_bias())
    out._metadata = getattr(state, "_metadata", OrderedDict())
    return out


def load_portable_state_dict(model: nn.Module, state: OrderedDict) -> nn.Module:
    """Inverse of :func:`portable_state_dict` on a model of the same (quantized) structure."""
    metadata = getattr(state, "_metadata", None)  # read first: copying drops it
    state = OrderedDict(state)
    for key in fp16_linear_keys(model) & set(state):
        state[key] = _to_float(state[key])
    for prefix, module in packed_rnns(model).items():
        saved = state.pop(f"{prefix}.__weight_bias__")
        weights = {k: _to_float(v) for k, v in saved["weight"].items()}
        module.set_weight_bias({**weights, **saved["bias"]})  # it returns them nested
        # The freshly packed cells go back in, so the strict load below checks everything else.
        state.update(module.state_dict(prefix=f"{prefix}."))
    if metadata is not None:
        state._metadata = metadata
    model.load_state_dict(state, strict=True)
    return model


def _half_weights(module: nn.Module, weight_bias: dict) -> dict:
    if getattr(module, "dtype", None) != torch.float16:
        return weight_bias
    return {**weight_bias, "weight": {k: _to_half(v) for k, v in weight_bias["weight"].items()}}


def _to_half(value):
    """fp32 tensors (or a (weight, bias) tuple's weight) to fp16 for storage."""
    if isinstance(value, tuple):
        return (_to_half(value[0]), *value[1:])
    return value.half() if torch.is_tensor(value) and value.dtype == torch.float32 else value


def _to_float(value):
    if isinstance(value, tuple):
        return (_to_float(value[0]), *value[1:])
    return value.float() if torch.is_tensor(value) and value.dtype == torch.float16 else value
