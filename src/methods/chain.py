"""Chains (``kind: chain``): a method whose ``steps`` list names other methods, applied in order.

``+method=prune_dynamic`` is structured pruning followed by dynamic int8: each step starts from the
previous step's result, and only the last model is what the run measures. Intermediate models are
handed to ``context.report_step`` so their metrics are recorded too. The first step may come from
a finished run that computed it (``context.reuse``: :mod:`src.pipeline.reuse`); every later step
starts from the run's seed (``context.reseed``), so reusing changes no result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from src.core.errors import ConfigError
from src.methods.base import (
    BASELINE,
    Method,
    MethodConfig,
    MethodContext,
    handler,
    method_config,
    register_method,
)


@dataclass
class ChainConfig(MethodConfig):
    """Attributes:
    steps: Method configs (dicts with a ``name`` and that method's keys), applied in order.
    """

    steps: list = field(default_factory=list)
    KIND: ClassVar[str] = "chain"

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError(f"method {self.name!r} needs a non-empty steps list of methods")
        self.steps = [_step_config(self.name, i, step) for i, step in enumerate(self.steps)]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "steps": [step.to_dict() for step in self.steps]}


def _step_config(chain: str, index: int, step) -> MethodConfig:
    if isinstance(step, MethodConfig):
        return step
    if not isinstance(step, dict) or (step.get("kind") or step.get("name", BASELINE)) == BASELINE:
        raise ConfigError(
            f"method {chain!r} step {index} must be a mapping with the name of a method, "
            f"e.g. {{name: dynamic}}; got {step!r}"
        )
    return method_config({k: v for k, v in step.items() if k != "baseline_run_id"})


def step_label(index: int, step: MethodConfig) -> str:
    """``1_prune``: a step's name in the chain's intermediate metrics."""
    return f"{index + 1}_{step.name}"


@register_method(ChainConfig)
class Chain(Method):
    def apply(self, model: nn.Module, config: ChainConfig, context: MethodContext) -> nn.Module:
        last = len(config.steps) - 1
        for index, step in enumerate(config.steps):
            label = step_label(index, step)
            if index and context.reseed is not None:
                context.reseed()
            found = None
            if index == 0 < last and context.reuse is not None:  # as a method run computes it
                found = context.reuse(label, step)
            model = found if found is not None else handler(step).apply(model, step, context)
            if index < last and context.report_step is not None:
                context.report_step(label, model)
        return model

    def rebuild(self, model: nn.Module, config: ChainConfig) -> nn.Module:
        for step in config.steps:
            model = handler(step).rebuild(model, step)
        return model
