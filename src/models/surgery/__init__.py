"""Structured-pruning surgery, kept beside the models it cuts: which units a model has, how
important each is, and how to rebuild the model without some of them.

A model family registers a :class:`Surgery` for its class (``register_surgery``), as it declares
``static_quant_regions`` for static quantization; the ``prune`` method (``src.methods.structured``)
asks :func:`surgery_for` and never names an architecture. A :class:`PrunePlan` names the
surviving indices of every unit group; ``shrink`` builds a new, smaller model of the same class
from it and ``mask`` zeroes the pruned units in place, so both give the same outputs (the tests'
proof that a surgery is right).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PrunePlan:
    """Which units survive: for every prunable 'unit group' a sorted LongTensor of kept indices."""

    keep: dict[str, torch.Tensor]


class Surgery(ABC):
    """Structured pruning of one model family (called under ``torch.no_grad``)."""

    @abstractmethod
    def groups(self, model: nn.Module) -> list[str]:
        """The unit groups a complete plan for ``model`` names."""

    @abstractmethod
    def plan(self, model: nn.Module, keep_fraction: float) -> PrunePlan:
        """Rank every group's units by importance and keep the top ``keep_fraction`` of each."""

    @abstractmethod
    def plan_problem(self, model: nn.Module, plan: PrunePlan) -> str | None:
        """What a plan with these sizes would need to be shrinkable (None: it is)."""

    @abstractmethod
    def shrunk(self, model: nn.Module, plan: PrunePlan) -> tuple[object, dict]:
        """The smaller model's config and its state dict (the kept slices)."""

    @abstractmethod
    def mask(self, model: nn.Module, plan: PrunePlan) -> None:
        """Zero, in place, what makes the pruned units non-zero."""


_SURGERIES: dict[type[nn.Module], Surgery] = {}


def register_surgery(model_class: type[nn.Module]):
    """Register a :class:`Surgery` subclass for ``model_class`` (and its subclasses)."""

    def wrap(cls: type[Surgery]) -> type[Surgery]:
        _SURGERIES[model_class] = cls()
        return cls

    return wrap


def surgery_for(model: nn.Module) -> Surgery | None:
    """The surgery registered for ``model``'s class (or a base class), None if there is none."""
    for cls in type(model).__mro__:
        if cls in _SURGERIES:
            return _SURGERIES[cls]
    return None


def top(score: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted indices of the ``count`` highest scores."""
    return torch.topk(score, count).indices.sort().values


def dropped(keep: torch.Tensor, n: int) -> torch.Tensor:
    """The indices of ``range(n)`` not in ``keep``."""
    gone = torch.ones(n, dtype=torch.bool)
    gone[keep] = False
    return gone.nonzero().squeeze(1)


def row_norm(linear: nn.Linear) -> torch.Tensor:
    """L2 norm of each output neuron's weights and bias."""
    return (linear.weight.pow(2).sum(1) + linear.bias.pow(2)).sqrt()
