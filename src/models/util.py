"""Facts about a built model that every layer above asks the same way."""

from __future__ import annotations

import torch
from torch import nn


def input_dtype(model: nn.Module) -> torch.dtype:
    """The float dtype a model computes in: its first floating parameter's (fp32 for int8
    models, whose packed weights are not parameters)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32
