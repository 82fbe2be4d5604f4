"""``+method=fp16`` / ``+method=bf16``: half-precision weights and inference.

bf16 keeps fp32's exponent range (no overflow in the GRU gates); fp16 keeps more mantissa. This
CPU's AVX-512 BF16 instructions make bf16 the one with a chance of being faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from src.methods.base import Method, MethodConfig, register_method

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class HalfConfig(MethodConfig):
    """No extra keys: the method name picks the dtype."""


@register_method("fp16", "bf16")
class Half(Method):
    config_class = HalfConfig

    def rebuild(self, model: nn.Module, config: HalfConfig) -> nn.Module:
        return model.to(DTYPES[config.name]).eval()
