"""DyAD architecture: ``python -m pytest tests/models/test_dyad.py``."""

import pytest
import torch

from src.core.errors import ConfigError
from src.models import create_model, list_models

REFERENCE = {
    "dyad_brand1": (814_230, 3.26),
    "dyad_brand2": (12_844_084, 51.38),
    "dyad_brand3": (836_390, 3.35),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_counts_match_the_reference(name):
    params, mb = REFERENCE[name]
    model = create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == params
    assert round(count * 4 / 1e6, 2) == mb


def test_registry_lists_variants_and_rejects_unknown():
    assert {"dyad", "dyad_tiny", *REFERENCE} <= set(list_models())
    with pytest.raises(ConfigError, match="Unknown model 'dyad_huge'"):
        create_model("dyad_huge")


def test_shapes_and_eval_is_deterministic():
    model = create_model("dyad_tiny").eval()
    x = torch.randn(6, 128, 7)
    out = model(x)
    assert out.prediction.shape == (6, 128, 5) and out.mileage.shape == (6, 1)
    assert torch.equal(out.z, out.mean)
    torch.testing.assert_close(model(x).prediction, out.prediction)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_corrected_reshape_keeps_samples_independent(num_layers):
    x = torch.randn(4, 128, 7)
    fixed = create_model("dyad_tiny", num_layers=num_layers).eval()
    quirk = create_model("dyad_tiny", num_layers=num_layers, reference_hidden_reshape=True).eval()
    quirk.load_state_dict(fixed.state_dict())
    alone = fixed(x[:1]).prediction
    torch.testing.assert_close(fixed(x).prediction[:1], alone)
    # The reference .view mixes batch neighbours: a sample's output depends on the others.
    assert not torch.allclose(quirk(x).prediction[:1], quirk(x[:1]).prediction, atol=1e-4)


def test_reference_reshape_equals_plain_view():
    """With the flag, the flattening is exactly the reference's ``hidden.view(B, f*H)``."""
    model = create_model("dyad_tiny", num_layers=2, reference_hidden_reshape=True)
    hidden = torch.randn(4, 3, 8)
    torch.testing.assert_close(model._flatten_hidden(hidden, 3), hidden.view(3, 32))
    torch.testing.assert_close(model._unflatten_hidden(hidden.view(3, 32), 3), hidden)


@pytest.mark.parametrize(
    "bad",
    [
        dict(num_inputs=0),
        dict(num_inputs=7),
        dict(hidden_size=0),
        dict(channels=["soc", "soc", "volt"]),
    ],
)
def test_bad_configs_name_the_key(bad):
    with pytest.raises(ConfigError, match="model\\."):
        create_model("dyad", **bad)
