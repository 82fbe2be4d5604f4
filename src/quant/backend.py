"""Preparing and converting models with the legacy eager ``torch.ao.quantization`` API.

``torch.ao.quantization`` is deprecated, but in torch 2.13 it is still the only int8 path for
``nn.GRU`` (dynamic) and the fastest in-PyTorch static int8 path for small CNNs on x86. Every call
to it sits in :mod:`src.quant`; ``tests/quant`` and ``tests/methods`` fail the day it goes.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

ao = torch.ao.quantization
ENGINE = "x86"

OBSERVERS = {
    "minmax": ao.MinMaxObserver,
    "moving_average": ao.MovingAverageMinMaxObserver,
    "histogram": ao.HistogramObserver,
}


@contextmanager
def quiet() -> Iterator[None]:
    """The deprecation warnings say what the module docstring says; once is enough."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        # Rebuilding a structure to load saved weights into never calibrates; that is expected.
        warnings.filterwarnings("ignore", message="must run observer before")
        yield


def quantize_dynamic(model: nn.Module, module_types: set[type], dtype: str) -> nn.Module:
    """Dynamic quantization (weights int8 or fp16, activations quantized per call)."""
    torch.backends.quantized.engine = ENGINE
    qdtype = {"int8": torch.qint8, "fp16": torch.float16}[dtype]
    with quiet():
        return ao.quantize_dynamic(model, module_types, dtype=qdtype, inplace=False)


def quantize_dynamic_modules(model: nn.Module, names: list[str], dtype: str = "int8") -> nn.Module:
    """Dynamic quantization of the named submodules only (nn.Linear or nn.GRU), the rest left
    as it is: a per-layer sensitivity treatment, or mixed precision's int8 part."""
    torch.backends.quantized.engine = ENGINE
    qdtype = {"int8": torch.qint8, "fp16": torch.float16}[dtype]
    base = ao.default_dynamic_qconfig if dtype == "int8" else ao.float16_dynamic_qconfig
    with quiet():
        return ao.quantize_dynamic(model, dict.fromkeys(names, base), dtype=qdtype, inplace=False)


def qconfig(observer: str, per_channel: bool):
    """Post-training: activations quint8 with ``reduce_range`` (7-bit: safe without VNNI),
    weights qint8 symmetric, per output channel or per tensor."""
    activation = OBSERVERS[observer].with_args(dtype=torch.quint8, reduce_range=True)
    if per_channel:
        weight = ao.PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        )
    else:
        weight = ao.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return ao.QConfig(activation=activation, weight=weight)


def qat_qconfig(per_channel: bool):
    """QAT fake quantization. Ranges must follow weights that move during training, so both
    observers are moving averages (a histogram observer does not fit a training loop)."""
    activation = ao.FakeQuantize.with_args(
        observer=ao.MovingAverageMinMaxObserver, quant_min=0, quant_max=127, dtype=torch.quint8
    )
    if per_channel:
        observer, scheme = ao.MovingAveragePerChannelMinMaxObserver, torch.per_channel_symmetric
    else:
        observer, scheme = ao.MovingAverageMinMaxObserver, torch.per_tensor_symmetric
    weight = ao.FakeQuantize.with_args(
        observer=observer,
        quant_min=-128,
        quant_max=127,
        dtype=torch.qint8,
        qscheme=scheme,
        **({"ch_axis": 0} if per_channel else {}),
    )
    return ao.QConfig(activation=activation, weight=weight)


class Stubbed(nn.Sequential):
    """``QuantStub -> module -> DeQuantStub``: the region between the stubs runs in int8."""

    def __init__(self, module: nn.Module):
        super().__init__(OrderedDict(quant=ao.QuantStub(), module=module, dequant=ao.DeQuantStub()))


def fuse_blocks(model: nn.Module, qat: bool) -> nn.Module:
    """Fuse every ``conv``/``bn``/``relu`` Sequential block into one (int8 Conv+ReLU) module."""
    groups = [
        [f"{name}.conv", f"{name}.bn", f"{name}.relu"]
        for name, module in model.named_modules()
        if isinstance(module, nn.Sequential) and {"conv", "bn", "relu"} <= set(module._modules)
    ]
    if not groups:
        return model
    fuse = ao.fuse_modules_qat if qat else ao.fuse_modules
    with quiet():
        return fuse(model, groups, inplace=True)


def stub_regions(model: nn.Module, regions: list[str]) -> nn.Module:
    """Wrap each named submodule with quant/dequant stubs and give it a qconfig marker."""
    for name in regions:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Stubbed(getattr(parent, child)))
    return model


def default_regions(model: nn.Module) -> list[str]:
    """Every Linear and Conv leaf (a model may declare larger regions instead)."""
    if hasattr(model, "static_quant_regions"):
        return list(model.static_quant_regions())
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d)
    return [name for name, m in model.named_modules() if isinstance(m, kinds) and name]


def prepare_static(model: nn.Module, regions: list[str], config, qat: bool) -> nn.Module:
    """Stubs around ``regions``, qconfig on them only, observers (or fake quant) inserted."""
    torch.backends.quantized.engine = ENGINE
    model.train(qat)
    fuse_blocks(model, qat)
    stub_regions(model, regions)
    for module in model.modules():
        if isinstance(module, Stubbed):
            module.qconfig = config
    with quiet():
        return (ao.prepare_qat if qat else ao.prepare)(model, inplace=True)


def convert(model: nn.Module) -> nn.Module:
    """Observed / fake-quantized model -> real int8 modules (eval first: observers freeze)."""
    model.eval()
    with quiet():
        return ao.convert(model, inplace=True)
