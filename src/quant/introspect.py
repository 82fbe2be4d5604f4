"""How torch.ao's quantized modules store their weights, read without changing them.

Quantized modules keep their weights in packed torchbind objects rather than in
``.parameters()``: dynamic GRUs as ``_all_weight_values`` cell params, quantized Linear/Conv as
``_packed_params`` behind ``weight()``/``bias()`` accessors. Measurement (sizes, weight counts,
precision tables) and the portable state dict read them through these functions only.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.ao.quantization import FakeQuantizeBase, ObserverBase

# Observers and (learnable) fake-quant modules hold ranges, scales and zero points: quantization
# metadata, never model weights.
METADATA_MODULES: tuple[type[nn.Module], ...] = (FakeQuantizeBase, ObserverBase)


def is_quantized(module: nn.Module) -> bool:
    """True for torch.ao's packed modules: int8 weights (static or dynamic), or fp16 for
    dynamic fp16 (their ``dtype`` says which)."""
    return type(module).__module__.startswith(
        ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")
    ) and hasattr(module, "_weight_bias")


def holds_packed_weights(module: nn.Module) -> bool:
    """True when ``module`` itself keeps weights packed (quantized Linear/Conv, dynamic RNN);
    its submodules then hold only the packed state, not weights of their own."""
    return hasattr(module, "_weight_bias") or hasattr(module, "_all_weight_values")


def is_metadata(module: nn.Module) -> bool:
    """Observers and fake-quant modules: their parameters are not model weights."""
    return isinstance(module, METADATA_MODULES)


def precision(module: nn.Module) -> str:
    """``int8``, ``fp16``, ``bf16`` or ``fp32``: how ``module`` stores its own weights."""
    packed = getattr(module, "_packed_params", None)
    dtype = getattr(packed, "dtype", None) or getattr(module, "dtype", None)
    if is_quantized(module):
        return "fp16" if dtype == torch.float16 else "int8"
    params = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
    if not params:
        return "fp32"
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(params[0].dtype, "fp32")


def packed_tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    """Unpack the weights (and biases) a quantized module hides from ``.parameters()``; nothing
    for an ordinary module."""
    if hasattr(module, "_all_weight_values"):  # dynamic GRU/LSTM/RNN
        for packed in _rnn_packed_linears(module):
            yield from _unpack_linear(packed)
    elif hasattr(module, "_packed_weight_ih"):  # dynamic GRUCell/LSTMCell/RNNCell
        for packed in (module._packed_weight_ih, module._packed_weight_hh):
            yield from _unpack_linear(packed)
    elif _is_method(module, "weight"):  # quantized Linear/Conv*/ConvReLU*/Embedding
        yield module.weight()
        if _is_method(module, "bias") and (bias := module.bias()) is not None:
            yield bias


def packed_rnns(model: nn.Module) -> dict[str, nn.Module]:
    """Dynamic quantized RNNs by name: their cells are TorchScript objects, not tensors."""
    return {
        name: m
        for name, m in model.named_modules()
        if hasattr(m, "_all_weight_values") and hasattr(m, "set_weight_bias")
    }


def fp16_linear_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the packed params of dynamic fp16 Linear modules."""
    return {
        f"{name}._packed_params._packed_params"
        for name, m in model.named_modules()
        if getattr(getattr(m, "_packed_params", None), "dtype", None) == torch.float16
    }


def _rnn_packed_linears(module: nn.Module) -> list[torch.ScriptObject]:
    """The LinearPackedParams (w_ih, w_hh per layer and direction) of a dynamic quantized RNN.

    Each entry's ``param`` is a ``CellParamsBase`` whose ``__getstate__()`` is
    ``((kind, tensors, doubles, longs, packed_linears), type_name)``. The qint8 kind also lists the
    biases in ``tensors``, but those are the same objects the packed linears carry, so only the
    packed linears are read to avoid counting biases twice.
    """
    packed = [
        item
        for entry in module._all_weight_values
        for part in entry.param.__getstate__()[0][1:]
        for item in part
        if isinstance(item, torch.ScriptObject)
    ]
    if not packed:  # a torch upgrade changed the layout: fail loudly instead of counting zero
        raise RuntimeError(f"cannot find packed weights in {type(module).__name__}")
    return packed


def _unpack_linear(packed: torch.ScriptObject) -> Iterator[torch.Tensor]:
    """Weight and (optional) bias of a LinearPackedParamsBase, qint8 or fp16 alike."""
    weight, bias = torch.ops.quantized.linear_unpack(packed)
    yield weight
    if bias is not None:
        yield bias


def _is_method(module: nn.Module, name: str) -> bool:
    """True when ``module.<name>`` is an accessor (quantized modules) rather than a tensor."""
    value = getattr(module, name, None)
    return callable(value) and not isinstance(value, torch.Tensor)
