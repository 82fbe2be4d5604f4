"""Which modules really hold int8 weights, and which silently stayed fp32.

Every weight-bearing leaf module gets a row: its name, class, precision and weight count. The
share of weights in int8 is logged as ``quant/int8_fraction`` so a "quantized" row whose GRU stayed
fp32 is visible at a glance.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from src.measure.size import count_weights
from src.quant.introspect import holds_packed_weights, precision


def _weight_leaves(model: nn.Module):
    """Modules that own weights themselves (quantized ones keep them packed, not as params)."""
    for name, module in model.named_modules():
        if name and (
            any(True for _ in module.parameters(recurse=False)) or holds_packed_weights(module)
        ):
            yield name, module


def coverage_report(model: nn.Module) -> tuple[pd.DataFrame, float]:
    """Per-module precision table and the fraction of weights stored in int8."""
    rows, seen = [], set()
    for name, module in _weight_leaves(model):
        if any(name.startswith(f"{s}.") for s in seen):
            continue  # counted inside a quantized parent (its packed params live below it)
        if holds_packed_weights(module):
            seen.add(name)
        total, _ = count_weights(module)
        if total:
            rows.append(
                {
                    "module": name,
                    "type": type(module).__name__,
                    "precision": precision(module),
                    "weights": total,
                }
            )
    table = pd.DataFrame(rows, columns=["module", "type", "precision", "weights"])
    weights = table.weights.sum()
    int8 = table.loc[table.precision == "int8", "weights"].sum()
    return table, float(int8 / weights) if weights else 0.0
