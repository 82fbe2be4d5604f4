"""Export rewrites registered beside the models: ``pytest tests/models/test_export.py``."""

import copy

import torch
from torch import nn

from src.models import create_model
from src.models.export import (
    _REWRITES,
    int8_compile_problem,
    register_export_rewrite,
    rewrite_for_export,
    rewrite_of,
)
from src.models.gru import decompose_grus


def _outputs(model, x):
    with torch.inference_mode():
        return torch.utils._pytree.tree_flatten(model.eval()(x))[0]


def test_a_decomposed_gru_exports_as_the_nn_gru_of_its_weights():
    torch.manual_seed(0)
    fused = create_model("dyad_tiny").eval()
    model = decompose_grus(copy.deepcopy(fused))
    seen = []
    rewritten, names = rewrite_for_export(model, prepare=seen.append)
    assert rewritten is model and names == ["decoder_rnn", "encoder_rnn"]
    assert sorted(type(m).__name__ for m in seen) == ["DecomposedGRU"] * 2  # prepared first
    assert type(model.encoder_rnn) is nn.GRU
    x = torch.randn(2, 16, len(fused.config.channels))
    for got, want in zip(_outputs(model, x), _outputs(fused, x), strict=True):
        assert torch.allclose(got, want, atol=1e-5)


def test_a_model_without_rewrites_is_left_as_it_is():
    model = create_model("cnn_tiny")
    before = [type(m) for m in model.modules()]
    assert rewrite_for_export(model) == (model, [])
    assert [type(m) for m in model.modules()] == before


def test_a_rewrite_is_found_by_class_and_base_class_and_may_replace_the_root():
    class Doubler(nn.Module):
        def forward(self, x):
            return x * 2

    class Tripler(Doubler):
        def forward(self, x):
            return x * 3

    register_export_rewrite(Doubler, lambda m: nn.Identity())
    try:
        assert rewrite_of(Tripler()) is rewrite_of(Doubler()) is not None
        model, names = rewrite_for_export(nn.Sequential(nn.ReLU(), Tripler()))
        assert names == ["1"] and isinstance(model[1], nn.Identity)
        root, names = rewrite_for_export(Doubler())
        assert names == [""] and isinstance(root, nn.Identity)
    finally:
        del _REWRITES[Doubler]
    assert rewrite_of(Doubler()) is None


def test_the_grus_say_why_an_int8_variant_holding_them_is_not_compiled():
    fused = create_model("dyad_tiny")
    # A fused nn.GRU stops compiling only where it was int8 itself ...
    assert int8_compile_problem(fused, int8_modules=["hidden2mean"]) is None
    problem = int8_compile_problem(fused, int8_modules=["encoder_rnn"])
    assert problem is not None and "int8 GRU" in problem
    # ... a decomposed one wherever it is (its unrolled time loop)
    decomposed = decompose_grus(copy.deepcopy(fused))
    assert int8_compile_problem(decomposed, int8_modules=[]) == problem
    assert int8_compile_problem(create_model("cnn_tiny"), ["features.0"]) is None
