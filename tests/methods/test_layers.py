"""Per-layer treatments: ``pytest tests/methods/test_layers.py``."""

import pytest
import torch
from torch import nn

from src.methods.layers import (
    Scheme,
    decomposed,
    prune_layer,
    quantize_layers,
    scan,
    treat,
    weight_layers,
)
from src.models import create_model
from src.quant.introspect import is_quantized
from tests.methods.fakes import dyad_setup


def test_layers_are_every_gru_projection_linear_and_conv():
    layers = weight_layers(decomposed(create_model("dyad_tiny")))
    kinds = {layer.name: layer.kind for layer in layers}
    assert (
        kinds["encoder_rnn.cells.1.hh"] == "gru.hh" and kinds["decoder_rnn.cells.0.ih"] == "gru.ih"
    )
    assert kinds["hidden2mean"] == "linear" and len(layers) == 14
    cnn = weight_layers(decomposed(create_model("cnn_tiny")))
    assert [layer.kind for layer in cnn] == ["conv", "conv", "linear", "linear"]
    assert not cnn[0].takes("dynamic") and cnn[0].takes("static") and cnn[2].takes("dynamic")


@pytest.mark.parametrize("treatment", ["dynamic", "static", "prune:0.5"])
def test_a_treatment_changes_its_layer_alone(treatment):
    model, task, data = dyad_setup()
    base = decomposed(model)
    layer = next(lay for lay in weight_layers(base) if lay.name == "decoder_rnn.cells.1.ih")
    treated = treat(base, layer, treatment, data)
    changed = [
        name
        for name, module in treated.named_modules()
        if isinstance(module, nn.Linear) and type(module) is not nn.Linear or is_quantized(module)
    ]
    assert all(name.startswith(layer.name) for name in changed)
    assert all(type(m) is nn.Linear for m in base.modules() if isinstance(m, nn.Linear))  # intact
    if treatment.startswith("prune"):
        weight = treated.get_submodule(layer.name).weight
        assert (weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert task.tune(treated, data, 0)["tuning/loss"] > task.tune(base, data, 0)["tuning/loss"]


def test_dynamic_fuses_a_gru_whose_projections_all_go_int8():
    base = decomposed(create_model("dyad_tiny").eval())
    names = [layer.name for layer in weight_layers(base)]
    out = quantize_layers(base, names, Scheme("dynamic"))
    assert type(out.encoder_rnn).__name__ == "GRU" and is_quantized(out.encoder_rnn)
    partial = quantize_layers(decomposed(create_model("dyad_tiny")), names[1:], Scheme("dynamic"))
    assert type(partial.encoder_rnn).__name__ == "DecomposedGRU"  # cells.0.ih stays fp32
    assert type(partial.encoder_rnn.cells[0].ih) is nn.Linear and is_quantized(partial.decoder_rnn)


def test_scan_scores_each_layer_that_takes_the_treatment():
    model = decomposed(create_model("cnn_tiny").eval())
    seen = []
    result = scan(model, weight_layers(model), "dynamic", lambda m: seen.append(m) or {"x": 1.0})
    assert list(result) == ["classifier.2", "classifier.5"] and len(seen) == 2


def test_prune_layer_is_permanent():
    model = decomposed(create_model("dyad_tiny"))
    prune_layer(model, "hidden2mean", 0.75)
    assert not hasattr(model.hidden2mean, "weight_mask")
    assert (model.hidden2mean.weight == 0).sum().item() == 48
    assert torch.isfinite(model.hidden2mean.weight).all()
