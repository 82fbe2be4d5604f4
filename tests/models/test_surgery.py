"""Structured pruning surgery of each model family: ``pytest tests/models/test_surgery.py``."""

import copy

import pytest
import torch

from src.core.errors import ConfigError
from src.methods import MethodContext, apply_method, method_config
from src.methods.structured import (
    PrunePlan,
    mask,
    plan_structured,
    prune_structured,
    shrink,
    supports_structured,
)
from src.models import create_model
from src.models.surgery import Surgery, dropped, register_surgery, row_norm, top

DYAD_CASES = [
    dict(num_layers=layers, bidirectional=bi, reference_hidden_reshape=ref)
    for layers in (1, 2)
    for bi in (True, False)
    for ref in (False, True)
]


def _dyad(**kwargs):
    torch.manual_seed(0)
    return create_model("dyad", hidden_size=12, latent_size=4, **kwargs).eval()


def _cnn(**kwargs):
    torch.manual_seed(0)
    model = create_model("cnn_tiny", in_channels=1, num_classes=10, image_size=32, **kwargs)
    for m in model.modules():  # non-trivial BN statistics, so that masking must handle them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cfg", DYAD_CASES, ids=str)
@pytest.mark.parametrize("fraction", [0.5, 0.3])
def test_dyad_shrink_matches_masked(cfg, fraction):
    model = _dyad(**cfg)
    plan = plan_structured(model, fraction)
    small = shrink(model, plan)
    masked = mask(copy.deepcopy(model), plan)
    assert type(small) is type(model) and small.config.num_layers == cfg["num_layers"]
    assert small.config.hidden_size == round(12 * fraction) < 12
    x = torch.randn(5, 20, len(model.config.channels))
    with torch.no_grad():
        got, want, full = small(x), masked(x), model(x)
    for field in ("prediction", "mean", "log_var", "mileage"):
        torch.testing.assert_close(getattr(got, field), getattr(want, field), atol=1e-5, rtol=0)
    assert not torch.allclose(want.prediction, full.prediction)  # masking did remove something


@pytest.mark.parametrize("blocks", [1, 2])
@pytest.mark.parametrize("hidden", [0, 24])
def test_cnn_shrink_matches_masked(blocks, hidden):
    model = _cnn(blocks_per_stage=blocks, hidden=hidden)
    plan = plan_structured(model, 0.5)
    small = shrink(model, plan)
    masked = mask(copy.deepcopy(model), plan)
    assert type(small) is type(model)
    assert small.config.widths == [4, 8] and small.config.hidden == hidden // 2
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=0)
    assert _count(small) < _count(model)


def test_original_untouched_and_full_fraction_is_identity():
    model = _cnn()
    before = copy.deepcopy(model.state_dict())
    same = prune_structured(model, 1.0)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
        assert torch.equal(same.state_dict()[key], value)


def test_dyad_brand2_parameters_drop():
    model = create_model("dyad_brand2")
    small = prune_structured(model, 0.5)
    assert small.config.hidden_size == 512
    assert small.mean2latent[0].out_features == 256
    assert _count(small) <= 0.3 * _count(model)
    gru = sum(p.numel() for n, p in small.named_parameters() if "rnn" in n)
    gru_full = sum(p.numel() for n, p in model.named_parameters() if "rnn" in n)
    assert gru <= 0.26 * gru_full


@pytest.mark.parametrize(
    "name, family, kwargs",
    [
        ("dyad", "dyad", dict(hidden_size=16, num_layers=2)),
        ("dyad_tiny", "dyad", {}),
        ("cnn_tiny", "cnn", dict(in_channels=1, num_classes=10, image_size=32)),
    ],
)
def test_export_config_rebuilds(name, family, kwargs):
    small = prune_structured(create_model(name, **kwargs), 0.5)
    rebuilt = create_model(family, **small.export_config())
    rebuilt.load_state_dict(small.state_dict(), strict=True)
    assert type(rebuilt) is type(small) and rebuilt.export_config() == small.export_config()


def test_dyad_keeps_high_norm_units():
    model = create_model("dyad_tiny", num_layers=2)  # H = 8
    strong = {"encoder_rnn": [1, 6], "decoder_rnn": [0, 5]}
    with torch.no_grad():
        for rnn, units in strong.items():
            gru = getattr(model, rnn)
            for name, p in gru.named_parameters():
                if "l1" in name:  # layer 1 gets other strong units than layer 0
                    rows = [u + 1 + g * 8 for u in units for g in range(3)]
                else:
                    rows = [u + g * 8 for u in units for g in range(3)]
                p[rows] *= 100
        model.mean2latent[0].weight[3] *= 100
    plan = plan_structured(model, 0.25)
    assert plan.keep["encoder_rnn.l0"].tolist() == [1, 6]
    assert plan.keep["encoder_rnn.l1"].tolist() == [2, 7]
    assert plan.keep["decoder_rnn.l0"].tolist() == [0, 5]
    assert plan.keep["decoder_rnn.l1"].tolist() == [1, 6]
    assert plan.keep["mean2latent.0"].tolist() == [3]


def test_cnn_keeps_high_norm_channels():
    model = _cnn(hidden=32)  # widths [8, 16]
    with torch.no_grad():
        model.features[0].bn.weight[[2, 5]] = 10.0
        model.features[2].conv.weight[[0, 9, 15]] *= 100
        model.classifier[2].weight[7] *= 100
    plan = plan_structured(model, 0.25)
    assert plan.keep["features.0"].tolist() == [2, 5]
    assert set(plan.keep["features.2"].tolist()) >= {0, 9, 15}
    assert 7 in plan.keep["classifier.2"].tolist()
    assert all(torch.equal(v, v.sort().values) for v in plan.keep.values())


def test_keep_counts_and_minimums():
    model = create_model("dyad_tiny")
    plan = plan_structured(model, 0.01)
    assert len(plan.keep["encoder_rnn.l0"]) == 2 and len(plan.keep["mean2latent.0"]) == 1
    cnn_plan = plan_structured(_cnn(), 0.01)
    assert all(len(v) == 1 for v in cnn_plan.keep.values())
    shrink(create_model("dyad_tiny"), plan)  # the minimal DyAD is still a valid config


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_bad_keep_fraction(fraction):
    with pytest.raises(ConfigError, match="keep_fraction"):
        plan_structured(create_model("dyad_tiny"), fraction)


def test_unsupported_model():
    model = torch.nn.Linear(4, 4)
    assert not supports_structured(model)
    assert supports_structured(create_model("dyad_tiny")) and supports_structured(_cnn())
    for fn in (lambda: plan_structured(model, 0.5), lambda: shrink(model, PrunePlan({}))):
        with pytest.raises(ConfigError, match="no surgery for Linear"):
            fn()
    with pytest.raises(ConfigError, match="no surgery for Linear"):
        mask(model, PrunePlan({}))


class _Mlp(torch.nn.Module):
    """A third model family, unknown to every compression method."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.hidden = torch.nn.Linear(4, config["width"])
        self.out = torch.nn.Linear(config["width"], 2)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


@register_surgery(_Mlp)
class _MlpSurgery(Surgery):
    def groups(self, model):
        return ["hidden"]

    def plan(self, model, keep_fraction):
        score = row_norm(model.hidden) * model.out.weight.norm(dim=0)
        return PrunePlan(
            {"hidden": top(score, max(1, round(model.config["width"] * keep_fraction)))}
        )

    def plan_problem(self, model, plan):
        return None if len(plan.keep["hidden"]) >= 1 else "at least one hidden unit"

    def shrunk(self, model, plan):
        keep, state = plan.keep["hidden"], dict(model.state_dict())
        state["hidden.weight"], state["hidden.bias"] = (
            state["hidden.weight"][keep],
            state["hidden.bias"][keep],
        )
        state["out.weight"] = state["out.weight"][:, keep]
        return {"width": len(keep)}, state

    def mask(self, model, plan):
        gone = dropped(plan.keep["hidden"], model.config["width"])
        model.hidden.weight[gone] = 0
        model.hidden.bias[gone] = 0


def test_a_new_family_registers_its_surgery_and_the_prune_method_uses_it():
    torch.manual_seed(0)
    model = _Mlp({"width": 8}).eval()
    config = method_config({"name": "prune", "structured": True, "sparsity": 0.5, "epochs": 0})
    small = apply_method(model, config, MethodContext())
    assert small.config == {"width": 4} and small.hidden.out_features == 4
    plan = plan_structured(model, 0.5)
    x = torch.randn(5, 4)
    masked = mask(copy.deepcopy(model), plan)
    torch.testing.assert_close(shrink(model, plan)(x), masked(x), rtol=0, atol=1e-6)


def test_inconsistent_plan_is_rejected():
    model = _cnn(blocks_per_stage=2)
    plan = plan_structured(model, 0.5)
    plan.keep["features.1"] = plan.keep["features.1"][:-1]  # stage 0's blocks now disagree
    with pytest.raises(ConfigError, match="same number"):
        shrink(model, plan)
    dyad = _dyad(num_layers=2, reference_hidden_reshape=True)
    plan = plan_structured(dyad, 0.5)
    assert torch.equal(plan.keep["encoder_rnn.l0"], plan.keep["encoder_rnn.l1"])
    plan.keep["encoder_rnn.l1"] = torch.arange(6)
    with pytest.raises(ConfigError, match="same units"):
        shrink(dyad, plan)
