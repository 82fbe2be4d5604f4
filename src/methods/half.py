"""``+method=fp16`` / ``+method=bf16``: half-precision weights and inference.

Both are one method, ``half``, whose ``dtype`` says which. bf16 keeps fp32's exponent range (no
overflow in the GRU gates); fp16 keeps more mantissa. This CPU's AVX-512 BF16 instructions make
bf16 the one with a chance of being faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from src.core.errors import ConfigError
from src.methods.base import Method, MethodConfig, register_method

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class HalfConfig(MethodConfig):
    """Attributes:
    dtype: ``fp16`` (IEEE half) or ``bf16`` (bfloat16).
    """

    dtype: str = "fp16"
    KIND: ClassVar[str] = "half"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"method.dtype={self.dtype!r}; choose one of {sorted(DTYPES)}")


@register_method(HalfConfig)
class Half(Method):
    def rebuild(self, model: nn.Module, config: HalfConfig) -> nn.Module:
        return model.to(DTYPES[config.dtype]).eval()
