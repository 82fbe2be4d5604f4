"""``+method=prune method.allocation=sensitivity``: ``pytest tests/methods/test_allocation.py``."""

import pandas as pd
import pytest
from torch import nn

from src.core.errors import ConfigError
from src.methods import MethodContext, apply_method, method_config
from src.methods.allocation import _within, allocate, parameter
from src.methods.layers import Layer
from src.models import create_model
from tests.methods.fakes import dyad_setup


def _curves(rises: dict[str, list[float]], ladder=(0.25, 0.5, 0.75, 0.9)) -> pd.DataFrame:
    rows = [(n, s, r) for n, values in rises.items() for s, r in zip(ladder, values, strict=True)]
    return pd.DataFrame(rows, columns=["layer", "sparsity", "rise"])


def test_insensitive_layers_take_more_of_the_cut_and_the_mean_hits_the_target():
    layers = [Layer("a", "linear", 1000), Layer("b", "linear", 1000), Layer("c", "linear", 2000)]
    curves = _curves(
        {"a": [0, 0, 0.001, 0.002], "b": [0.01, 0.1, 0.5, 2.0], "c": [0.001, 0.01, 0.05, 0.2]}
    )
    rates = allocate(layers, curves, 0.6)
    assert rates["a"] > rates["c"] > rates["b"]
    mean = (1000 * rates["a"] + 1000 * rates["b"] + 2000 * rates["c"]) / 4000
    assert mean == pytest.approx(0.6, abs=1e-6)
    with pytest.raises(ConfigError, match="ladder"):
        allocate(layers, curves, 0.95)


def test_a_curve_is_read_monotone_and_interpolated():
    import numpy as np

    sparsity, rise = np.array([0, 0.5, 1.0]), np.array([0.0, 0.1, 0.3])
    assert _within(sparsity, rise, 0.05) == pytest.approx(0.25)
    assert _within(sparsity, rise, 0.2) == pytest.approx(0.75)
    assert _within(sparsity, rise, 5.0) == 1.0


def test_decomposed_names_map_to_the_grus_own_weights():
    model = create_model("dyad_tiny")  # bidirectional: cells.1 is the reverse direction
    module, name = parameter(model, "encoder_rnn.cells.1.hh")
    assert module is model.encoder_rnn and name == "weight_hh_l0_reverse"
    assert parameter(model, "hidden2mean") == (model.hidden2mean, "weight")


def test_prune_spreads_the_target_by_sensitivity():
    model, task, data = dyad_setup()
    tables = {}
    context = MethodContext(data=data, task=task, log_table=lambda n, f: tables.update({n: f}))
    config = method_config(
        {"name": "prune", "allocation": "sensitivity", "sparsity": 0.6, "epochs": 0, "rounds": 2}
    )
    pruned = apply_method(model, config, context)
    table = tables["prune_allocation"].set_index("layer")
    assert table.sparsity.std() > 0.1  # not uniform
    zeros = total = 0
    for name, row in table.iterrows():
        module, param = parameter(pruned, name)
        weight = getattr(module, param)
        assert not isinstance(weight, nn.Parameter) or not hasattr(module, f"{param}_mask")
        zeros += (weight == 0).sum().item()
        total += weight.numel()
        rounding = 2 / weight.numel()  # a 4-weight layer cannot be 90 % sparse
        assert (weight == 0).float().mean().item() == pytest.approx(
            row.sparsity, abs=rounding + 0.05
        )
    assert zeros / total == pytest.approx(0.6, abs=0.02)
    with pytest.raises(ConfigError, match="structured=false"):
        method_config({"name": "prune", "allocation": "sensitivity", "structured": True})
