"""Structured pruning: drop whole units and rebuild a smaller dense model of the same class.

The architecture-specific part (unit groups, importance, the surgery itself) lives beside each
model family (``src.models.surgery``); this module validates fractions and plans, and turns a
plan into the smaller model. ``shrink(model, plan)`` builds a new model; ``mask(model, plan)``
zeroes the pruned units in place, and both give the same outputs.

Example:
    >>> small = prune_structured(create_model("dyad_tiny"), 0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from src.core.errors import ConfigError
from src.models.surgery import PrunePlan, Surgery, surgery_for

__all__ = [
    "PrunePlan",
    "group_names",
    "mask",
    "plan_structured",
    "prune_structured",
    "shrink",
    "supports_structured",
]


def supports_structured(model: nn.Module) -> bool:
    """Whether a surgery is registered for this model's family."""
    return surgery_for(model) is not None


def group_names(model: nn.Module) -> list[str]:
    """The unit groups a complete plan for ``model`` must name."""
    return _surgery(model).groups(model)


def plan_structured(model: nn.Module, keep_fraction: float) -> PrunePlan:
    """Rank every group's units by importance and keep the top ``round(n * keep_fraction)``.

    Args:
        model: A model whose family registered a surgery (DyAD, CNN).
        keep_fraction: Share of units to keep per group, in (0, 1]. At least one unit (two for
            DyAD's GRUs, whose config needs ``hidden_size >= 2``) always survives.

    Raises:
        ConfigError: Unsupported model or ``keep_fraction`` out of range.
    """
    surgery = _surgery(model)
    if not 0 < keep_fraction <= 1:
        raise ConfigError(f"keep_fraction={keep_fraction} must be in (0, 1], e.g. 0.5")
    with torch.no_grad():
        return surgery.plan(model, keep_fraction)


def shrink(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """A new, smaller dense model of the same class holding the surviving weights.

    The original model is left untouched; the new one is in the original's train/eval mode.
    """
    surgery = _checked(model, plan)
    with torch.no_grad():
        config, state = surgery.shrunk(model, plan)
    small = type(model)(config)
    small.load_state_dict(state, strict=True)
    return small.train(model.training)


def mask(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Zero, in place, the parameters that make pruned units non-zero, so they output exactly 0.

    Returns:
        ``model`` itself, whose outputs then equal those of ``shrink(original, plan)``.
    """
    surgery = _checked(model, plan)
    with torch.no_grad():
        surgery.mask(model, plan)
    return model


def prune_structured(model: nn.Module, keep_fraction: float) -> nn.Module:
    """``shrink(model, plan_structured(model, keep_fraction))``."""
    return shrink(model, plan_structured(model, keep_fraction))


def _surgery(model: nn.Module) -> Surgery:
    surgery = surgery_for(model)
    if surgery is None:
        raise ConfigError(
            f"structured pruning has no surgery for {type(model).__name__}; use a dyad* or cnn* "
            "model, or register one (src.models.surgery)"
        )
    return surgery


def _checked(model: nn.Module, plan: PrunePlan) -> Surgery:
    """Shrinking needs the plan's groups and consistent sizes; say so instead of failing deep
    inside a config or a shape mismatch."""
    surgery = _surgery(model)
    groups = surgery.groups(model)
    if set(plan.keep) != set(groups):
        raise ConfigError(f"plan groups {sorted(plan.keep)} must be {groups}")
    need = surgery.plan_problem(model, plan)
    if need is not None:
        sizes = {name: len(idx) for name, idx in plan.keep.items()}
        raise ConfigError(f"plan sizes {sizes} cannot be shrunk: make {need}")
    return surgery
