"""``+method=mixed``: ``pytest tests/methods/test_mixed.py``."""

import pytest
import torch

from src.core.errors import ConfigError
from src.methods import MethodContext, apply_method, method_config, rebuild
from src.methods.layers import weight_layers
from src.methods.mixed import build
from src.models import create_model
from src.quant.introspect import is_quantized
from tests.methods.fakes import dyad_setup


def _context(task, data, tables):
    return MethodContext(data=data, task=task, log_table=lambda n, f: tables.update({n: f}))


@pytest.mark.parametrize("scheme", ["dynamic", "static"])
def test_keeps_the_fewest_most_sensitive_layers_that_hold_the_budget(scheme):
    model, task, data = dyad_setup()
    tables = {}
    config = method_config({"name": "mixed", "scheme": scheme, "budget": 0.002})
    mixed = apply_method(model, config, _context(task, data, tables))
    choice = tables["mixed_choice"]
    ranked = choice[choice["rank"] > 0]
    # most sensitive first; the kept ones are exactly the top of that ranking
    assert ranked.loss_alone.is_monotonic_decreasing
    assert config.keep == list(ranked.layer[ranked.kept_fp32])
    loss = task.tune(mixed, data, 0)["tuning/loss"]
    fp32 = choice.fp32_loss.iloc[0]
    assert loss <= fp32 * 1.002
    k = len(config.keep)
    if k:  # one layer fewer in fp32 would have broken the budget
        assert choice.loss_keeping_to_here.dropna().iloc[-2] > fp32 * 1.002
    for name in config.keep:
        assert not is_quantized(mixed.get_submodule(name))


def test_a_loose_budget_quantizes_everything_and_the_artifact_rebuilds_it():
    model, task, data = dyad_setup()
    config = method_config({"name": "mixed", "budget": 10.0})
    mixed = apply_method(model, config, _context(task, data, {}))
    assert config.keep == [] and is_quantized(mixed.encoder_rnn)  # the fused int8 GRU
    again = rebuild(create_model("dyad_tiny").eval(), method_config(config.to_dict()))
    again.load_state_dict(mixed.state_dict())
    x = task.x
    assert torch.equal(again(x).prediction, mixed(x).prediction)


def test_max_keep_caps_the_fp32_layers():
    model, task, data = dyad_setup()
    config = method_config({"name": "mixed", "budget": 0.0, "max_keep": 2})
    apply_method(model, config, _context(task, data, {}))
    assert len(config.keep) == 2


def test_named_layers_are_checked_and_a_rebuild_needs_them():
    model = create_model("dyad_tiny").eval()
    with pytest.raises(ConfigError, match="names no layer"):
        build(model, method_config({"name": "mixed", "keep": ["encoder_rnn.cells.9.ih"]}))
    with pytest.raises(ConfigError, match="method.keep"):
        rebuild(model, method_config({"name": "mixed"}))
    with pytest.raises(ConfigError, match="budget"):
        method_config({"name": "mixed", "budget": -1})
    with pytest.raises(ConfigError, match="scheme"):
        method_config({"name": "mixed", "scheme": "fp8"})
    kept = build(model, method_config({"name": "mixed", "keep": ["hidden2mean"]}))
    assert not is_quantized(kept.hidden2mean) and is_quantized(kept.latent2hidden)
    assert len(weight_layers(kept)) < 14  # the fused GRUs' projections are no longer Linears


def test_mixed_chains_and_the_chain_rebuilds_what_it_settled():
    model, task, data = dyad_setup()
    steps = [{"name": "prune", "sparsity": 0.3, "epochs": 0}, {"name": "mixed", "budget": 0.001}]
    chain = method_config({"name": "prune_mixed", "kind": "chain", "steps": steps})
    out = apply_method(model, chain, _context(task, data, {}))
    assert isinstance(chain.steps[1].keep, list)  # settled in the chain's own config
    again = rebuild(create_model("dyad_tiny").eval(), method_config(chain.to_dict()))
    again.load_state_dict(out.state_dict())
    assert torch.equal(again(task.x).prediction, out(task.x).prediction)
