"""Per-layer sparsities from sensitivity (``+method=prune method.allocation=sensitivity``).

Each layer is pruned alone at a ladder of sparsities and the rise of the tuning loss is recorded
(the curve Distiller plots). A global target is then spread so that every layer stops at the same
loss rise ``tau``: a layer is pruned as far as its (monotone, linearly interpolated) curve stays
within ``tau``, and ``tau`` is the smallest that reaches the target weight count. Insensitive
layers take more of the cut, sensitive ones less, instead of one rate for all.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.methods.base import MethodContext
from src.methods.layers import PRUNE, Layer, decomposed, scan, weight_layers
from src.models.gru import gru_weight_name

LOSS = schema.TUNING_LOSS
_PROJECTION = re.compile(r"^(?P<gru>.*)\.cells\.(?P<index>\d+)\.(?P<which>ih|hh)$")


def layer_curves(
    model: nn.Module, ladder: list[float], context: MethodContext, subsample: int | None
) -> tuple[list[Layer], pd.DataFrame]:
    """The model's layers and, per layer and ladder sparsity, the relative tuning-loss rise."""
    if context.task is None or context.data is None:
        raise ConfigError("method.allocation=sensitivity needs the task and its tuning data")

    def loss(candidate: nn.Module) -> dict[str, float]:
        return {LOSS: context.task.tune(candidate, context.data, context.seed, subsample)[LOSS]}

    base = decomposed(model)
    layers = weight_layers(base)
    fp32 = loss(base)[LOSS]
    rows = [
        {"layer": name, "sparsity": float(s), "loss": value[LOSS], "rise": value[LOSS] / fp32 - 1}
        for s in ladder
        for name, value in scan(base, layers, f"{PRUNE}:{s}", loss).items()
    ]
    return layers, pd.DataFrame(rows)


def allocate(layers: list[Layer], curves: pd.DataFrame, target: float) -> dict[str, float]:
    """Sparsity per layer: the same loss rise ``tau`` for every layer, the weighted mean equal to
    ``target``.

    Raises:
        ConfigError: The ladder's largest sparsity cannot reach ``target``.
    """
    sizes = np.array([layer.params for layer in layers], dtype=float)
    points = [_curve(curves[curves.layer == layer.name]) for layer in layers]
    reach = float(sizes @ [s[-1] for s, _ in points] / sizes.sum())
    if target > reach + 1e-9:
        raise ConfigError(
            f"method.sparsity={target} is beyond what method.ladder reaches "
            f"({reach:.3f}); add higher sparsities to the ladder"
        )

    def spread(tau: float) -> np.ndarray:
        return np.array([_within(s, rise, tau) for s, rise in points])

    low, high = 0.0, max(float(rise[-1]) for _, rise in points)
    for _ in range(60):  # bisection on tau: the mean sparsity grows with it
        mid = (low + high) / 2
        low, high = (mid, high) if sizes @ spread(mid) / sizes.sum() < target else (low, mid)
    chosen = spread(high)
    chosen *= target / max(sizes @ chosen / sizes.sum(), 1e-12)  # flat stretches jump: land exactly
    return {layer.name: float(min(s, 0.999)) for layer, s in zip(layers, chosen, strict=True)}


def _curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(sparsities, rises) from 0, the rise made monotone (pruning more never helps, as a rule;
    a dip in the measured curve is noise and would invert the ordering)."""
    rows = rows.sort_values("sparsity")
    sparsity = np.r_[0.0, rows.sparsity.to_numpy(float)]
    rise = np.maximum.accumulate(np.clip(np.r_[0.0, rows.rise.to_numpy(float)], 0, None))
    return sparsity, rise


def _within(sparsity: np.ndarray, rise: np.ndarray, tau: float) -> float:
    """The largest sparsity whose interpolated rise is at most ``tau``."""
    j = int(np.searchsorted(rise, tau, side="right")) - 1
    if j >= len(rise) - 1:
        return float(sparsity[-1])
    step = rise[j + 1] - rise[j]
    part = 0.0 if step <= 0 else (tau - rise[j]) / step
    return float(sparsity[j] + part * (sparsity[j + 1] - sparsity[j]))


def parameter(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module and parameter that layer ``name`` (a decomposed name) is in ``model`` itself:
    a GRU projection is a weight matrix of the ``nn.GRU``."""
    found = _PROJECTION.match(name)
    if found:
        gru = model.get_submodule(found["gru"])
        if isinstance(gru, nn.RNNBase):
            directions = 2 if gru.bidirectional else 1
            return gru, gru_weight_name(int(found["index"]), found["which"], directions)
    return model.get_submodule(name), "weight"
