"""``+method=mixed``: mixed precision from per-layer sensitivity. The ``k`` most sensitive layers
stay fp32, the rest run in int8 (dynamic or static), ``k`` the smallest that keeps the tuning loss
within a budget.

Each layer is quantized alone and ranked by how much the tuning loss (the task's scoring loss on
the tuning vehicles or validation images, never the test ones) rises; then the layers are kept in
fp32 most sensitive first until the whole model, with every other layer in int8, is within
``budget`` of the fp32 model's loss. A decomposed GRU whose projections all go int8 runs as
PyTorch's fused int8 GRU (:func:`src.methods.layers.quantize_layers`). The choice is settled in
the config (``keep``), so the artifact rebuilds exactly this model, and the run logs how it was
made (``tables/mixed_choice.csv``: every layer's sensitivity and the loss at each ``k``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.methods.base import (
    CALIBRATION_BATCHES,
    OBSERVER,
    Method,
    MethodConfig,
    MethodContext,
    register_method,
)
from src.methods.layers import Scheme, decomposed, quantize_layers, scan, weight_layers

log = logging.getLogger(__name__)
LOSS = schema.TUNING_LOSS


@dataclass
class MixedConfig(MethodConfig):
    """Attributes:
    scheme: How the quantized layers run: ``dynamic`` or ``static`` int8.
    budget: The tuning loss may rise at most this fraction above the fp32 model's (0.05: 5 %).
    keep: The layers kept in fp32 (names as in ``python -m src.sensitivity``'s table); null:
        chosen on the tuning split by ``budget`` (the run's ``method.settled`` tag and its
        artifact then hold the choice).
    max_keep: At most this many layers in fp32 (null: as many as the budget needs).
    subsample: Snippets per tuning vehicle (or validation images) each scan scores; null: all.
    observer: Static activation observer.
    per_channel: Static per-channel weight scales.
    calibration_batches: Static calibration batches.
    """

    scheme: str = "dynamic"
    budget: float = 0.05
    keep: list | None = None
    max_keep: int | None = None
    subsample: int | None = 32
    observer: str = OBSERVER
    per_channel: bool = True
    calibration_batches: int = CALIBRATION_BATCHES
    KIND: ClassVar[str] = "mixed"

    def __post_init__(self) -> None:
        _ = self.quantization  # validates scheme, observer and calibration batches
        if not float(self.budget) >= 0:
            raise ConfigError(f"method.budget={self.budget} must be >= 0 (0.05: 5 % more loss)")
        if self.max_keep is not None and int(self.max_keep) < 0:
            raise ConfigError(f"method.max_keep={self.max_keep} must be >= 0 or null")
        if self.subsample is not None and int(self.subsample) < 1:
            raise ConfigError(f"method.subsample={self.subsample} must be >= 1 or null")
        if self.keep is not None:
            self.keep = [str(name) for name in self.keep]

    @property
    def calibration_count(self) -> int:
        return int(self.calibration_batches)

    @property
    def quantization(self) -> Scheme:
        return Scheme(self.scheme, self.observer, bool(self.per_channel), self.calibration_batches)


def build(model: nn.Module, config: MixedConfig, data=None) -> nn.Module:
    """``model`` with every layer but ``config.keep`` in int8 (``data``: static calibration)."""
    model = decomposed(model)
    known = {layer.name: layer for layer in weight_layers(model)}
    unknown = sorted(set(config.keep or ()) - set(known))
    if unknown:
        raise ConfigError(f"method.keep names no layer {unknown}; the layers are {sorted(known)}")
    kind = config.quantization.kind
    chosen = [n for n, layer in known.items() if n not in config.keep and layer.takes(kind)]
    return quantize_layers(model, chosen, config.quantization, data)


def choose_keep(model: nn.Module, config: MixedConfig, context: MethodContext) -> list[str]:
    """The fewest most-sensitive layers to keep in fp32 so that the tuning loss stays within
    the budget; the ranking and the loss at each count go to ``tables/mixed_choice.csv``."""
    if context.task is None or context.data is None:
        raise ConfigError("method mixed chooses its fp32 layers on data; give method.keep=[...]")

    def loss(candidate: nn.Module) -> float:
        return context.task.tune(candidate, context.data, context.seed, config.subsample)[LOSS]

    base = decomposed(model)
    layers = [layer for layer in weight_layers(base) if layer.takes(config.scheme)]
    fp32 = loss(base)
    alone = scan(
        base, layers, config.scheme, lambda m: {LOSS: loss(m)}, context.data, config.quantization
    )
    ranked = sorted(layers, key=lambda layer: alone[layer.name][LOSS], reverse=True)
    limit, most = fp32 * (1 + float(config.budget)), len(ranked)
    if config.max_keep is not None:
        most = min(most, int(config.max_keep))
    curve = []
    for k in range(most + 1):
        keep = [layer.name for layer in ranked[:k]]
        trial = MixedConfig(**{**_fields(config), "keep": keep})
        curve.append(loss(build(model, trial, context.data)))
        if curve[-1] <= limit:
            break
    log.info(
        "mixed: %d of %d layers kept in fp32 (tuning loss %.4g, fp32 %.4g, limit %.4g)",
        k,
        len(ranked),
        curve[-1],
        fp32,
        limit,
    )
    context.record("mixed_choice", _choice_table(ranked, alone, curve, fp32))
    return keep


def _fields(config: MixedConfig) -> dict:
    values = config.to_dict()
    return {k: v for k, v in values.items() if k not in ("kind", "version")}


def _choice_table(ranked, alone, curve, fp32) -> pd.DataFrame:
    """One row per layer, most sensitive first: its loss quantized alone, and the whole model's
    loss with it and every layer above it kept in fp32 (empty past the chosen count)."""
    rows = [
        {
            "rank": i + 1,
            "layer": layer.name,
            "kind": layer.kind,
            "params": layer.params,
            "loss_alone": alone[layer.name][LOSS],
            "loss_alone_rel": alone[layer.name][LOSS] / fp32 - 1,
            "loss_keeping_to_here": curve[i + 1] if i + 1 < len(curve) else None,
            "kept_fp32": i + 1 < len(curve),
        }
        for i, layer in enumerate(ranked)
    ]
    head = {"rank": 0, "layer": "(none kept)", "loss_keeping_to_here": curve[0], "kept_fp32": False}
    columns = [
        "rank",
        "layer",
        "kind",
        "params",
        "loss_alone",
        "loss_alone_rel",
        "loss_keeping_to_here",
        "kept_fp32",
    ]
    return pd.DataFrame([head, *rows], columns=columns).assign(fp32_loss=fp32)


@register_method(MixedConfig)
class Mixed(Method):
    def apply(self, model: nn.Module, config: MixedConfig, context: MethodContext) -> nn.Module:
        if config.keep is None:
            config.keep = choose_keep(model, config, context)  # settled: the artifact rebuilds it
        return build(model, config, context.data)

    def rebuild(self, model: nn.Module, config: MixedConfig) -> nn.Module:
        if config.keep is None:
            raise ConfigError("a mixed model's config must name its fp32 layers (method.keep)")
        return build(model, config)
