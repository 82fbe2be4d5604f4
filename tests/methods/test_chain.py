"""Chains of methods in process: ``pytest tests/methods/test_chain.py``."""

import io

import pytest
import torch

from src.core.errors import ConfigError
from src.measure.precision import coverage_report
from src.methods import MethodContext, apply_method, method_config, rebuild
from src.methods.prune import PruneConfig
from src.models import create_model
from src.quant.state import load_portable_state_dict, portable_state_dict

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

PRUNE_DYNAMIC = {
    "name": "prune_dynamic",
    "kind": "chain",
    "steps": [{"name": "prune", "structured": True, "epochs": 0}, {"name": "dynamic"}],
}


def test_chain_config_validates_every_step():
    config = method_config(PRUNE_DYNAMIC)
    assert isinstance(config.steps[0], PruneConfig) and config.steps[0].structured
    with pytest.raises(ConfigError, match="method.sparsity"):
        method_config({"name": "c", "kind": "chain", "steps": [{"name": "prune", "sparsity": 2}]})
    with pytest.raises(ConfigError, match="non-empty steps"):
        method_config({"name": "c", "kind": "chain", "steps": []})
    with pytest.raises(ConfigError, match="step 0"):
        method_config({"name": "c", "kind": "chain", "steps": ["dynamic"]})


def test_prune_dynamic_applies_in_order_reports_steps_and_reloads():
    model = create_model("dyad_tiny").eval()
    reports = []
    context = MethodContext(report_step=lambda label, m: reports.append((label, m)))
    config = method_config(PRUNE_DYNAMIC)
    final = apply_method(model, config, context)
    assert [label for label, _ in reports] == ["1_prune"]
    assert reports[0][1].config.hidden_size == 4
    assert final.config.hidden_size == 4 and coverage_report(final)[1] == 1.0
    buffer = io.BytesIO()
    torch.save(portable_state_dict(final), buffer)
    buffer.seek(0)
    reloaded = rebuild(create_model("dyad_tiny", **final.export_config()).eval(), config)
    load_portable_state_dict(reloaded, torch.load(buffer, weights_only=True))
    x = torch.randn(2, 16, 7)
    with torch.inference_mode():
        assert torch.equal(reloaded(x).prediction, final(x).prediction)


def test_a_chain_is_chosen_by_kind_and_round_trips_through_its_dict():
    config = method_config(PRUNE_DYNAMIC)
    values = config.to_dict()
    assert values["kind"] == "chain" and values["steps"][0]["kind"] == "prune"
    assert method_config(values) == config
    with pytest.raises(ConfigError, match="Unknown method 'my_chain'"):
        method_config({"name": "my_chain", "steps": [{"name": "dynamic"}]})  # no kind: chain
