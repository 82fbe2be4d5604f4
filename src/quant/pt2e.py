"""An eager int8 variant as PyTorch's maintained int8 form: PT2E with the x86 inductor quantizer.

``torch.ao.quantization``'s eager int8 modules are deprecated and cannot be compiled. Their
maintained successor is PT2E (torchao): ``torch.export`` the float model, annotate it with
``X86InductorQuantizer``, calibrate, convert, then ``torch.compile`` with freezing, where
inductor lowers each quantized pattern to oneDNN's ``qlinear`` / ``qconv`` kernels.

The *same method* runs there as in ONNX Runtime: the variant's float twin (its dequantized
weights, :func:`src.quant.deploy.float_twin`) re-quantized in its own mode (dynamic or static),
and only in the modules that were int8. Projections go back to plain ``nn.Linear`` (the quantizer
annotates ``aten.linear``); the caller decomposes a dynamic int8 GRU into its Linear projections,
so compiling unrolls its loop and every projection is int8: the compiled loop is what makes the
decomposed GRU fast where eager's Python loop is not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from src.quant.deploy import STATIC, MatMulLinear, Twin

# torchao probes its CUDA extensions at import and logs every miss; none is used on CPU.
logging.getLogger("torchao").setLevel(logging.ERROR)


def plain_linears(model: nn.Module) -> nn.Module:
    """``model`` (changed in place) with every :class:`MatMulLinear` as the ``nn.Linear`` of the
    same weights: the x86 quantizer annotates ``aten.linear``, not a bare matmul."""
    for name, module in list(model.named_modules()):
        if isinstance(module, MatMulLinear):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, _linear(module))
    return model


def quantize_pt2e(
    twin: Twin, example: torch.Tensor, calibration: Sequence[torch.Tensor]
) -> nn.Module:
    """The exported, PT2E-quantized graph of ``twin`` (its projections :func:`plain_linears`,
    its int8 GRUs decomposed into them): static twins
    calibrated on ``calibration``, dynamic ones with per-batch activation ranges.

    Raises:
        ImportError: torchao is not installed.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config(is_dynamic=twin.mode != STATIC)
    quantizer = xiq.X86InductorQuantizer()
    for name in twin.int8_modules:  # only what was int8 in eager
        quantizer.set_module_name_qconfig(name, config)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    graph = torch.export.export(twin.model.eval(), (example,), dynamic_shapes=({0: batch},))
    prepared = prepare_pt2e(graph.module(), quantizer)
    with torch.no_grad():
        for inputs in calibration if twin.mode == STATIC else (example,):
            prepared(inputs)
    return convert_pt2e(prepared)


def _linear(module: MatMulLinear) -> nn.Linear:
    """The nn.Linear of a MatMulLinear (same weights)."""
    n_in, n_out = module.weight_t.shape
    linear = nn.Linear(n_in, n_out, bias=module.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(module.weight_t.t())
        if module.bias is not None:
            linear.bias.copy_(module.bias)
    return linear.eval()
