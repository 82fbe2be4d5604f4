"""``+method=dynamic``: post-training dynamic quantization (weights int8 or fp16, activations
quantized on the fly). GRU and Linear layers for DyAD; Linear for the CNN (dynamic int8 convs are
slower than fp32 on x86, so convolutions are left alone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from src.core.errors import ConfigError
from src.methods.base import Method, MethodConfig, register_method
from src.quant import backend

DTYPES = ("int8", "fp16")


@dataclass
class DynamicConfig(MethodConfig):
    """Attributes:
    dtype: ``int8`` (qint8 weights) or ``fp16`` (half weights, fp32 math).
    """

    dtype: str = "int8"
    KIND: ClassVar[str] = "dynamic"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"method.dtype={self.dtype!r}; choose one of {DTYPES}")


@register_method(DynamicConfig)
class Dynamic(Method):
    def rebuild(self, model: nn.Module, config: DynamicConfig) -> nn.Module:
        return backend.quantize_dynamic(model.eval(), {nn.GRU, nn.Linear}, config.dtype)
