"""Which modules really hold int8 weights, and which silently stayed fp32.

Every weight-bearing leaf module gets a row: its name, class, precision and weight count. The
share of weights in int8 is logged as ``quant/int8_fraction`` so a "quantized" row whose GRU stayed
fp32 is visible at a glance.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from src.measure.size import count_weights
from src.methods.ao_adapter import is_quantized


def _precision(module: nn.Module) -> str:
    packed = getattr(module, "_packed_params", None)
    dtype = getattr(packed, "dtype", None) or getattr(module, "dtype", None)
    if is_quantized(module):
        return "fp16" if dtype == torch.float16 else "int8"
    params = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
    return (
        {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(params[0].dtype, "fp32")
        if params
        else "fp32"
    )


def _weight_leaves(model: nn.Module):
    """Modules that own weights themselves (quantized ones keep them packed, not as params)."""
    for name, module in model.named_modules():
        if name and (
            any(True for _ in module.parameters(recurse=False))
            or hasattr(module, "_weight_bias")
            or hasattr(module, "_all_weight_values")
        ):
            yield name, module


def coverage_report(model: nn.Module) -> tuple[pd.DataFrame, float]:
    """Per-module precision table and the fraction of weights stored in int8."""
    rows, seen = [], set()
    for name, module in _weight_leaves(model):
        if any(name.startswith(f"{s}.") for s in seen):
            continue  # counted inside a quantized parent (its packed params live below it)
        if hasattr(module, "_weight_bias") or hasattr(module, "_all_weight_values"):
            seen.add(name)
        total, _ = count_weights(module)
        if total:
            rows.append(
                {
                    "module": name,
                    "type": type(module).__name__,
                    "precision": _precision(module),
                    "weights": total,
                }
            )
    table = pd.DataFrame(rows, columns=["module", "type", "precision", "weights"])
    weights = table.weights.sum()
    int8 = table.loc[table.precision == "int8", "weights"].sum()
    return table, float(int8 / weights) if weights else 0.0
