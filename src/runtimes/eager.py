"""The ``eager`` runtime: the model itself in PyTorch, the reference every speedup divides."""

from __future__ import annotations

from torch import nn

from src.runtimes.base import EAGER, DeployContext, Deployed, register_runtime


@register_runtime(EAGER)
def deploy(model: nn.Module, context: DeployContext) -> Deployed:
    return Deployed(model, form="PyTorch eager")
