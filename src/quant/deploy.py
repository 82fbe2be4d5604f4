"""The float twin of an eager-quantized model, for runtimes that quantize on their own.

An exporter cannot read torch.ao's packed int8 modules (``quantized::linear_dynamic``, a
dynamic ``GRU``'s TorchScript cells). A deployment runtime (ONNX Runtime) has its own int8
kernels instead, so the honest way to run the *same method* there is: the same weights, in float
(dequantized, so they hold exactly the int8 grid the eager variant uses), re-quantized by the
runtime's own quantizer in the same mode (dynamic or static).

:func:`float_twin` builds that model and says which of its modules were int8 and how. Every
projection that was int8 becomes a :class:`MatMulLinear`, whose export is a plain ``MatMul``
(ONNX Runtime's dynamic quantizer reaches ``MatMul``, never ``Gemm``); a dynamic int8 ``GRU``
comes back as a float ``nn.GRU`` named in :attr:`Twin.int8_grus`, for the runtime to unroll into
int8 projections (:func:`src.runtimes.onnxruntime.gru.expand_grus`). A static variant's
decomposed GRU keeps its structure here, its projections twinned; the runtime recomposes it (the
export rewrite its family registers, :mod:`src.models.export`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from src.quant.introspect import is_quantized

ao_nn = torch.ao.nn
DYNAMIC, STATIC = "dynamic", "static"


class MatMulLinear(nn.Module):
    """``y = x @ W^T + b`` with ``W^T`` stored as ``(in, out)``: exports as ``MatMul`` + ``Add``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight_t = nn.Parameter(weight.detach().float().t().contiguous(), False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight_t)
        return y if self.bias is None else y + self.bias


@dataclass
class Twin:
    """A float model and how its eager original was quantized.

    Attributes:
        model: The float model (eval mode), same outputs as the original up to int8 rounding.
        mode: ``dynamic`` or ``static`` when some module was int8; None for a float model.
        int8_modules: Names (in ``model``) of the modules that were int8: a runtime quantizes
            these and only these.
        int8_grus: The GRUs among them (a runtime unrolls these to reach their projections).
    """

    model: nn.Module
    mode: str | None = None
    int8_modules: list[str] = field(default_factory=list)
    int8_grus: list[str] = field(default_factory=list)


def float_twin(model: nn.Module) -> Twin:
    """The float twin of ``model`` (a copy; ``model`` is untouched). A float model comes back as
    a plain copy with ``mode=None``.

    Raises:
        TypeError: A quantized module this function does not know (the message names it).
    """
    import copy

    twin = copy.deepcopy(model).eval()
    modes, names = set(), []

    grus: list[str] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            full = f"{prefix}{name}"
            replaced = _replacement(child)
            if replaced is None:
                visit(child, f"{full}.")
                continue
            setattr(parent, name, replaced[0])
            if replaced[1] is not None:
                modes.add(replaced[1])
                names.append(full)
                if isinstance(replaced[0], nn.GRU):
                    grus.append(full)

    visit(twin, "")
    if len(modes) > 1:
        raise TypeError(f"model mixes dynamic and static int8 modules ({names}); export one mode")
    return Twin(twin, modes.pop() if modes else None, names, grus)


def _replacement(module: nn.Module) -> tuple[nn.Module, str | None] | None:
    """(float module, int8 mode or None) for a quantized module; None to keep ``module``."""
    if isinstance(module, ao_nn.quantized.Quantize | ao_nn.quantized.DeQuantize):
        return nn.Identity(), None
    if isinstance(module, ao_nn.quantized.dynamic.GRU):
        return _gru(module)
    if not is_quantized(module):
        return None
    is_dynamic = type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")
    int8 = getattr(getattr(module, "_packed_params", None), "dtype", torch.qint8) == torch.qint8
    mode = (DYNAMIC if is_dynamic else STATIC) if int8 else None
    weight, bias = _float(module.weight()), module.bias()
    if isinstance(module, ao_nn.quantized.Linear | ao_nn.quantized.dynamic.Linear):
        return MatMulLinear(weight, bias), mode
    if isinstance(module, ao_nn.intrinsic.quantized.LinearReLU):
        return nn.Sequential(MatMulLinear(weight, bias), nn.ReLU()), mode
    conv = _conv(module, weight, bias)
    if conv is not None:
        relu = isinstance(
            module, ao_nn.intrinsic.quantized.ConvReLU1d | ao_nn.intrinsic.quantized.ConvReLU2d
        )
        return (nn.Sequential(conv, nn.ReLU()) if relu else conv), mode
    raise TypeError(f"no float twin for quantized module {type(module).__name__}")


def _gru(module: nn.Module) -> tuple[nn.Module, str | None]:
    """A dynamic GRU as the float ``nn.GRU`` of its (dequantized) weights."""
    gru = nn.GRU(
        module.input_size,
        module.hidden_size,
        module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        bidirectional=module.bidirectional,
    )
    weights = module._weight_bias()
    with torch.no_grad():
        for key, value in {**weights["weight"], **weights["bias"]}.items():
            getattr(gru, key).copy_(_float(value))
    return gru.eval(), DYNAMIC if module.dtype == torch.qint8 else None


def _conv(module: nn.Module, weight: torch.Tensor, bias) -> nn.Module | None:
    """The float Conv1d/2d with ``module``'s geometry and weights, or None if not a conv."""
    dims = {1: nn.Conv1d, 2: nn.Conv2d}.get(weight.dim() - 2)
    if dims is None or not hasattr(module, "stride"):
        return None
    conv = dims(
        module.in_channels,
        module.out_channels,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        dilation=module.dilation,
        groups=module.groups,
        bias=bias is not None,
        padding_mode=module.padding_mode,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv.eval()


def _float(value: torch.Tensor) -> torch.Tensor:
    return value.dequantize() if value.is_quantized else value.float()
