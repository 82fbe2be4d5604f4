"""Structured pruning of DyAD's DynamicVAE: GRU hidden units and the mileage MLP's neurons.

Groups: ``{encoder,decoder}_rnn.l{layer}`` (GRU units, one set for both directions) and
``mean2latent.0`` (mileage MLP). A GRU unit's importance is the L2 norm of every weight it owns
or that reads it (its r/z/n rows of ``weight_ih``, ``weight_hh`` and both biases in every
direction, its ``weight_hh`` column, the next layer's input columns, ``hidden2mean``/
``hidden2log_v`` columns or ``latent2hidden`` rows and ``outputs2embedding`` columns): a unit with
small weights in and out moves little. A Linear neuron's: ``||row, bias|| * ||outgoing column||``.
"""

from __future__ import annotations

import re
from dataclasses import replace

import torch
from torch import nn

from src.models.dyad import DynamicVAE
from src.models.surgery import PrunePlan, Surgery, dropped, register_surgery, row_norm, top

RNNS = ("encoder_rnn", "decoder_rnn")
MILEAGE = "mean2latent.0"
_GRU_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(?:_reverse)?")


@register_surgery(DynamicVAE)
class DyadSurgery(Surgery):
    def groups(self, model: DynamicVAE) -> list[str]:
        layers = range(model.config.num_layers)
        return [f"{rnn}.l{layer}" for rnn in RNNS for layer in layers] + [MILEAGE]

    def plan(self, model: DynamicVAE, keep_fraction: float) -> PrunePlan:
        return _plan_dyad(model, keep_fraction)

    def plan_problem(self, model: DynamicVAE, plan: PrunePlan) -> str | None:
        sizes = {name: len(idx) for name, idx in plan.keep.items()}
        ok, need = _dyad_plan_ok(model, plan, sizes)
        return None if ok else need

    def shrunk(self, model: DynamicVAE, plan: PrunePlan) -> tuple:
        return _shrink_dyad(model, plan)

    def mask(self, model: DynamicVAE, plan: PrunePlan) -> None:
        _mask_dyad(model, plan)


def _dyad_plan_ok(model: DynamicVAE, plan: PrunePlan, sizes: dict[str, int]) -> tuple[bool, str]:
    new_h = sizes[f"{RNNS[0]}.l0"]
    grus = [n for n in sizes if n != MILEAGE]
    ok = new_h >= 2 and sizes[MILEAGE] == new_h // 2 and {sizes[n] for n in grus} == {new_h}
    need = "all GRU groups one size H' >= 2 and mean2latent.0 of size H'//2"
    if ok and model.config.reference_hidden_reshape:
        # See _flat_index: with the reference reshape only a set shared by all layers is exact.
        ok = all(torch.equal(plan.keep[n], plan.keep[n.rsplit(".", 1)[0] + ".l0"]) for n in grus)
        need = "every layer of a GRU keep the same units (reference_hidden_reshape=True)"
    return ok, need


def _gate_rows(units: torch.Tensor, hidden: int) -> torch.Tensor:
    """Rows of ``units`` in PyTorch's stacked (r, z, n) gate layout."""
    return torch.cat([units + gate * hidden for gate in range(3)])


def _per_direction(units: torch.Tensor, hidden: int, dirs: int) -> torch.Tensor:
    """Columns d*H + j of a (.., dirs*H) layer output holding ``units``."""
    return torch.cat([units + d * hidden for d in range(dirs)])


def _flat_index(units: list[torch.Tensor], hidden: int, dirs: int) -> torch.Tensor:
    """Positions m*H + j in the (B, layers*dirs*H) flattened state, m = layer*dirs + dir.

    Under ``reference_hidden_reshape`` the state at m*H + j belongs to a layer that depends on
    the sample, but j is still the unit index; a keep set shared by all layers stays exact.
    """
    return torch.cat([units[m // dirs] + m * hidden for m in range(len(units) * dirs)])


def _gru_scores(model: DynamicVAE, name: str) -> torch.Tensor:
    """(layers, H) squared L2 norms of the weights each GRU unit owns or is read by."""
    c, rnn = model.config, getattr(model, name)
    h, dirs = c.hidden_size, c.directions
    scores = torch.zeros(c.num_layers, h)
    for key, p in rnn.named_parameters():
        layer = int(_GRU_KEY.fullmatch(key)[3])
        scores[layer] += p.reshape(3, h, -1).pow(2).sum((0, 2))
        if "weight_hh" in key:
            scores[layer] += p.pow(2).sum(0)
        elif "weight_ih" in key and layer > 0:
            scores[layer - 1] += p.pow(2).sum(0).reshape(dirs, h).sum(0)
    if name == "encoder_rnn":
        flat = model.hidden2mean.weight.pow(2).sum(0) + model.hidden2log_v.weight.pow(2).sum(0)
    else:
        flat = model.latent2hidden.weight.pow(2).sum(1) + model.latent2hidden.bias.pow(2)
        scores[-1] += model.outputs2embedding.weight.pow(2).sum(0).reshape(dirs, h).sum(0)
    return scores + flat.reshape(c.num_layers, dirs, h).sum(1)


def _plan_dyad(model: DynamicVAE, keep_fraction: float) -> PrunePlan:
    c = model.config
    new_h = max(2, round(c.hidden_size * keep_fraction))
    keep = {}
    for name in RNNS:
        scores = _gru_scores(model, name)
        if c.reference_hidden_reshape:  # see _flat_index: only a shared set is exact
            scores = scores.sum(0, keepdim=True).expand_as(scores)
        for layer in range(c.num_layers):
            keep[f"{name}.l{layer}"] = top(scores[layer], new_h)
    first, second = model.mean2latent[0], model.mean2latent[2]
    keep[MILEAGE] = top(row_norm(first) * second.weight.norm(dim=0), new_h // 2)
    return PrunePlan(keep)


def _shrink_gru(rnn: nn.GRU, keeps: list[torch.Tensor], prefix: str, state: dict) -> None:
    """Slice every GRU tensor in ``state``: gate rows of kept units, recurrent columns of kept
    units, and for layers > 0 the input columns d*H + j of the previous layer's kept units."""
    h = rnn.hidden_size
    for key, p in rnn.named_parameters():
        layer = int(_GRU_KEY.fullmatch(key)[3])
        p = p[_gate_rows(keeps[layer], h)]
        if key.startswith("weight_hh"):
            p = p[:, keeps[layer]]
        elif key.startswith("weight_ih") and layer > 0:
            p = p[:, _per_direction(keeps[layer - 1], h, 1 + rnn.bidirectional)]
        state[f"{prefix}.{key}"] = p


def _shrink_dyad(model: DynamicVAE, plan: PrunePlan) -> tuple:
    c = model.config
    h, dirs = c.hidden_size, c.directions
    state = dict(model.state_dict())
    keeps = {rnn: [plan.keep[f"{rnn}.l{i}"] for i in range(c.num_layers)] for rnn in RNNS}
    for rnn in RNNS:
        _shrink_gru(getattr(model, rnn), keeps[rnn], rnn, state)
    enc = _flat_index(keeps["encoder_rnn"], h, dirs)
    dec = _flat_index(keeps["decoder_rnn"], h, dirs)
    last = _per_direction(keeps["decoder_rnn"][-1], h, dirs)
    mileage = plan.keep[MILEAGE]
    for key, rows, cols in [
        ("hidden2mean.weight", None, enc),
        ("hidden2log_v.weight", None, enc),
        ("latent2hidden.weight", dec, None),
        ("latent2hidden.bias", dec, None),
        ("outputs2embedding.weight", None, last),
        ("mean2latent.0.weight", mileage, None),
        ("mean2latent.0.bias", mileage, None),
        ("mean2latent.2.weight", None, mileage),
    ]:
        state[key] = state[key][rows] if cols is None else state[key][:, cols]
    return replace(c, hidden_size=len(keeps["encoder_rnn"][0])), state


def _mask_dyad(model: DynamicVAE, plan: PrunePlan) -> None:
    # Zero gate rows give n = tanh(0) = 0 and h' = h/2, so a unit that starts at 0 stays 0.
    c = model.config
    h, dirs = c.hidden_size, c.directions
    for rnn in RNNS:
        for key, p in getattr(model, rnn).named_parameters():
            layer = int(_GRU_KEY.fullmatch(key)[3])
            p[_gate_rows(dropped(plan.keep[f"{rnn}.l{layer}"], h), h)] = 0
    # The decoder's initial state comes from latent2hidden: pruned units must start at 0.
    gone = [dropped(plan.keep[f"decoder_rnn.l{i}"], h) for i in range(c.num_layers)]
    rows = _flat_index(gone, h, dirs)
    model.latent2hidden.weight[rows] = 0
    model.latent2hidden.bias[rows] = 0
    mileage = dropped(plan.keep[MILEAGE], h // 2)
    model.mean2latent[0].weight[mileage] = 0
    model.mean2latent[0].bias[mileage] = 0
