"""``+method=prune``: magnitude pruning, unstructured or structured.

Unstructured (``structured=false``) zeroes the smallest weights of every Linear, Conv and GRU
matrix, globally or per layer. The tensors stay dense, so the shipped file and the latency do not
change; only a sparse format or compression gains (the run reports both, and ``size/nonzero``).

Structured (``structured=true``) removes whole GRU hidden units, Linear neurons and conv channels
by importance and rebuilds a smaller dense model of the same class, which is smaller and faster
for real. Either kind can prune in ``rounds``, each followed by fine-tuning, with sparsity on
the cubic schedule of Zhu & Gupta (2017) up to the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
from torch import nn
from torch.nn.utils import prune

from src.core.errors import ConfigError
from src.methods import allocation, structured
from src.methods.base import Method, MethodConfig, MethodContext, register_method

SCOPES = ("global", "layer")
ALLOCATIONS = ("uniform", "sensitivity")


@dataclass
class PruneConfig(MethodConfig):
    """Attributes:
    structured: Remove units/channels (smaller dense model) instead of single weights.
    sparsity: Target fraction removed: of the weights (unstructured) or of the units of every
        prunable layer (structured; DyAD hidden 1024 -> 512 at 0.5).
    scope: Unstructured only: ``global`` ranks all weights together, ``layer`` each matrix.
    rounds: Prune -> fine-tune rounds; sparsity follows a cubic schedule to the target.
    epochs: Fine-tuning epochs after each round (0: one-shot, no fine-tuning).
    lr: Fine-tuning learning rate.
    allocation: Unstructured only: ``uniform`` (one ranking or rate for all, per ``scope``) or
        ``sensitivity`` (each layer's rate from its tuning-loss curve at the ``ladder``
        sparsities, the same loss rise for every layer; :mod:`src.methods.allocation`).
    ladder: The sparsities each layer is tried at alone (``allocation=sensitivity``).
    subsample: Snippets per tuning vehicle (or validation images) each try scores; null: all.
    """

    structured: bool = False
    sparsity: float = 0.5
    scope: str = "global"
    rounds: int = 1
    epochs: int = 1
    lr: float = 1e-3
    allocation: str = "uniform"
    ladder: list = field(default_factory=lambda: [0.25, 0.5, 0.75, 0.9])
    subsample: int | None = 32
    KIND: ClassVar[str] = "prune"

    def __post_init__(self) -> None:
        if not 0 < float(self.sparsity) < 1:
            raise ConfigError(f"method.sparsity={self.sparsity} must be in (0, 1)")
        if self.scope not in SCOPES:
            raise ConfigError(f"method.scope={self.scope!r}; choose one of {SCOPES}")
        if int(self.rounds) < 1 or int(self.epochs) < 0:
            raise ConfigError("method.rounds must be >= 1 and method.epochs >= 0")
        if not 0 < float(self.lr) < 1:
            raise ConfigError(f"method.lr={self.lr} must be in (0, 1)")
        if self.allocation not in ALLOCATIONS:
            raise ConfigError(f"method.allocation={self.allocation!r}; choose one of {ALLOCATIONS}")
        if self.allocation == "sensitivity" and self.structured:
            raise ConfigError(
                "method.allocation=sensitivity spreads single weights; use it with "
                "method.structured=false"
            )
        if not self.ladder or not all(0 < float(s) < 1 for s in self.ladder):
            raise ConfigError(f"method.ladder={self.ladder} must list sparsities in (0, 1)")


def schedule(target: float, rounds: int) -> list[float]:
    """Cumulative sparsity after each round: ``s_k = target * (1 - (1 - k/rounds)^3)``."""
    return [target * (1 - (1 - k / rounds) ** 3) for k in range(1, rounds + 1)]


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every weight matrix: Linear and Conv weights, GRU input and hidden matrices."""
    found = []
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            found.append((module, "weight"))
        elif isinstance(module, nn.RNNBase):
            found += [(module, n) for n in module._flat_weights_names if n.startswith("weight")]
    return found


def prune_unstructured(model: nn.Module, previous: float, target: float, scope: str) -> None:
    """Raise the sparsity from ``previous`` to ``target`` (torch's pruning re-ranks only the
    weights still alive, so the round's amount is taken of those)."""
    amount = (target - previous) / (1 - previous)
    params = prunable(model)
    if scope == "global":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    else:
        for module, name in params:
            prune.l1_unstructured(module, name, amount=amount)


def sensitivity_rates(model: nn.Module, config: PruneConfig, context: MethodContext) -> dict:
    """Each layer's final sparsity from its curve; the curves and rates go to the run's
    ``tables/prune_allocation.csv``."""
    ladder = [float(s) for s in config.ladder]
    layers, curves = allocation.layer_curves(model, ladder, context, config.subsample)
    rates = allocation.allocate(layers, curves, float(config.sparsity))
    table = curves.pivot(index="layer", columns="sparsity", values="rise")
    table.columns = [f"rise_at_{c:g}" for c in table.columns]
    sizes = {layer.name: layer.params for layer in layers}
    table = table.assign(params=pd.Series(sizes), sparsity=pd.Series(rates))
    context.record("prune_allocation", table.reset_index().rename(columns={"index": "layer"}))
    return rates


def prune_by_layer(model: nn.Module, rates: dict, before: float, after: float) -> None:
    """Raise every layer from ``before`` to ``after`` of its own rate (fractions of the way)."""
    for name, rate in rates.items():
        done, goal = rate * before, rate * after
        if goal > done:
            module, param = allocation.parameter(model, name)
            prune.l1_unstructured(module, param, amount=(goal - done) / (1 - done))


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into the weights and drop the pruning hooks."""
    for module, name in prunable(model):
        if hasattr(module, f"{name}_mask"):
            prune.remove(module, name)
    return model


@register_method(PruneConfig)
class Prune(Method):
    def apply(self, model: nn.Module, config: PruneConfig, context: MethodContext) -> nn.Module:
        if config.structured and not structured.supports_structured(model):
            raise ConfigError(
                f"structured pruning does not know {type(model).__name__}; "
                "use method.structured=false"
            )
        rates = (
            sensitivity_rates(model, config, context) if config.allocation != "uniform" else None
        )
        previous = 0.0
        for target in schedule(float(config.sparsity), int(config.rounds)):
            if config.structured:
                model = structured.prune_structured(model, (1 - target) / (1 - previous))
            elif rates is not None:
                prune_by_layer(model, rates, previous / config.sparsity, target / config.sparsity)
            else:
                prune_unstructured(model, previous, target, config.scope)
            if int(config.epochs) and context.fine_tune is not None:
                context.fine_tune(model, int(config.epochs), float(config.lr))
            previous = target
        return make_permanent(model.eval())

    def rebuild(self, model: nn.Module, config: PruneConfig) -> nn.Module:
        # Structured results are saved with their own (smaller) config and unstructured ones are
        # dense: either way the model built from the artifact's config already has the shape.
        return model
