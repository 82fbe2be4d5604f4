"""A static int8 variant's own quantization parameters, read off its eager modules.

A runtime with its own int8 kernels (ONNX Runtime's QDQ) runs the *same* static variant when it
quantizes each layer exactly as the eager one does: the same int8 weights with the same
per-channel scales, and the layer's input quantized with the scale and zero point the eager
model quantizes it with (an observer's, calibrated or learnt in QAT). Recalibrating in the
runtime instead gives other ranges (and lost 0.04 AUROC on the unrolled GRU), and costs half a
minute of ONNX Runtime's graph editing.

:func:`static_layers` reads those parameters: the weights from the packed modules, the input
quantization by running the model once with a hook on each layer (an input's scale is wherever
the eager graph quantized it: a stub, or the previous layer's output).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

STATIC_TYPES = (torch.ao.nn.quantized.Linear, torch.ao.nn.quantized.modules.conv._ConvNd)


@dataclass(frozen=True)
class StaticLayer:
    """One static int8 Linear / Conv as the eager variant runs it.

    Attributes:
        name: The module's name in the eager model.
        weight: Its float weight as the runtime's float twin holds it (dequantized int8, torch's
            layout: ``(out, in, ...)``): what identifies the layer in an exported graph.
        weight_int8: The int8 weight, same layout.
        weight_scale: Per output channel (or one value for a per-tensor weight).
        weight_zero_point: Same shape as ``weight_scale`` (int8).
        input_scale: The scale the layer's input is quantized with (quint8).
        input_zero_point: Its zero point (0..255).
        output_scale: The scale of the layer's output (after a fused ReLU).
        output_zero_point: Its zero point.
    """

    name: str
    weight: np.ndarray
    weight_int8: np.ndarray
    weight_scale: np.ndarray
    weight_zero_point: np.ndarray
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int


def static_layers(model: nn.Module, example: torch.Tensor) -> list[StaticLayer]:
    """Every static int8 Linear / Conv of ``model`` that ran on ``example``, with its
    parameters (:class:`StaticLayer`). Dynamic int8 modules are not static layers.

    Raises:
        ValueError: A layer that ran on inputs quantized with different parameters (one scale
            per layer is what a runtime's QDQ form can hold).
    """
    inputs: dict[str, set[tuple[float, int]]] = {}
    hooks = [
        module.register_forward_pre_hook(_recorder(inputs.setdefault(name, set())))
        for name, module in model.named_modules()
        if _is_static(module)
    ]
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    modules = dict(model.named_modules())
    return [_layer(name, modules[name], seen) for name, seen in inputs.items() if seen]


def _is_static(module: nn.Module) -> bool:
    """A static int8 Linear or Conv (fused ReLU variants subclass them; dynamic Linear too,
    which is left out)."""
    static = not type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")
    return isinstance(module, STATIC_TYPES) and static and module.weight().dtype == torch.qint8


def _recorder(seen: set[tuple[float, int]]):
    def record(_module, args) -> None:
        x = args[0]
        seen.add((float(x.q_scale()), int(x.q_zero_point())))

    return record


def _layer(name: str, module: nn.Module, seen: set[tuple[float, int]]) -> StaticLayer:
    if len(seen) > 1:
        raise ValueError(f"{name} ran on inputs quantized {len(seen)} ways; a QDQ form holds one")
    (scale, zero_point), weight = next(iter(seen)), module.weight()
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if weight.q_per_channel_axis() != 0:
            raise ValueError(f"{name}: per-channel weight scales on axis != 0 (output channels)")
        w_scale = weight.q_per_channel_scales().numpy().astype(np.float32)
        w_zero = weight.q_per_channel_zero_points().numpy().astype(np.int8)
    else:
        w_scale = np.array(weight.q_scale(), np.float32)
        w_zero = np.array(weight.q_zero_point(), np.int8)
    return StaticLayer(
        name,
        weight.dequantize().numpy().astype(np.float32),
        weight.int_repr().numpy(),
        w_scale,
        w_zero,
        scale,
        zero_point,
        float(module.scale),
        int(module.zero_point),
    )
