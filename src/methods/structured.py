"""Structured pruning by model surgery: drop whole units and rebuild a smaller dense model.

A :class:`PrunePlan` names the surviving indices of every unit group. :func:`shrink` builds a
new, smaller model of the same class from them; :func:`mask` zeroes the pruned units in place, so
both give the same outputs (the tests' proof that the surgery is right).

Groups: DyAD ``{encoder,decoder}_rnn.l{layer}`` (GRU units, one set for both directions) and
``mean2latent.0`` (mileage MLP); CNN ``features.{i}`` (conv blocks) and ``classifier.2`` (hidden).

Importance, higher kept. GRU unit: L2 norm of every weight it owns or that reads it (its r/z/n
rows of ``weight_ih``, ``weight_hh`` and both biases in every direction, its ``weight_hh``
column, the next layer's input columns, ``hidden2mean``/``hidden2log_v`` columns or
``latent2hidden`` rows and ``outputs2embedding`` columns): a unit with small weights in and out
moves little. Conv channel: ``|bn.gamma| * ||filter||``, since BatchNorm rescales the filter's
output. Linear neuron: ``||row, bias|| * ||outgoing column||``.

Example:
    >>> small = prune_structured(create_model("dyad_tiny"), 0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import torch
from torch import nn

from src.core.errors import ConfigError
from src.models.cnn import CNN
from src.models.dyad import DynamicVAE

RNNS = ("encoder_rnn", "decoder_rnn")
MILEAGE = "mean2latent.0"
HIDDEN = "classifier.2"
_GRU_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(?:_reverse)?")


@dataclass
class PrunePlan:
    """Which units survive: for every prunable 'unit group' a sorted LongTensor of kept indices."""

    keep: dict[str, torch.Tensor]


def supports_structured(model: nn.Module) -> bool:
    """Whether :func:`plan_structured` and :func:`shrink` know this architecture."""
    return isinstance(model, DynamicVAE | CNN)


def plan_structured(model: nn.Module, keep_fraction: float) -> PrunePlan:
    """Rank every group's units by importance and keep the top ``round(n * keep_fraction)``.

    Args:
        model: A DynamicVAE or CNN.
        keep_fraction: Share of units to keep per group, in (0, 1]. At least one unit (two for
            DyAD's GRUs, whose config needs ``hidden_size >= 2``) always survives.

    Raises:
        ConfigError: Unsupported model or ``keep_fraction`` out of range.
    """
    _check_model(model)
    if not 0 < keep_fraction <= 1:
        raise ConfigError(f"keep_fraction={keep_fraction} must be in (0, 1], e.g. 0.5")
    with torch.no_grad():
        if isinstance(model, DynamicVAE):
            return _plan_dyad(model, keep_fraction)
        return _plan_cnn(model, keep_fraction)


def shrink(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """A new, smaller dense model of the same class holding the surviving weights.

    The original model is left untouched; the new one is in the original's train/eval mode.
    """
    _check_model(model)
    with torch.no_grad():
        if isinstance(model, DynamicVAE):
            config, state = _shrink_dyad(model, plan)
        else:
            config, state = _shrink_cnn(model, plan)
    small = type(model)(config)
    small.load_state_dict(state, strict=True)
    return small.train(model.training)


def mask(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Zero, in place, the parameters that make pruned units non-zero, so they output exactly 0.

    Returns:
        ``model`` itself, whose outputs then equal those of ``shrink(original, plan)``.
    """
    _check_model(model)
    _check_plan(model, plan)
    with torch.no_grad():
        if isinstance(model, DynamicVAE):
            _mask_dyad(model, plan)
        else:
            _mask_cnn(model, plan)
    return model


def prune_structured(model: nn.Module, keep_fraction: float) -> nn.Module:
    """``shrink(model, plan_structured(model, keep_fraction))``."""
    return shrink(model, plan_structured(model, keep_fraction))


def group_names(model: nn.Module) -> list[str]:
    """The unit groups a complete plan for ``model`` must name."""
    if isinstance(model, DynamicVAE):
        layers = range(model.config.num_layers)
        return [f"{rnn}.l{layer}" for rnn in RNNS for layer in layers] + [MILEAGE]
    blocks = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, nn.Sequential)]
    return blocks + ([HIDDEN] if model.config.hidden else [])


def _check_model(model: nn.Module) -> None:
    if not supports_structured(model):
        raise ConfigError(
            f"structured pruning supports DynamicVAE and CNN, not {type(model).__name__}; "
            "use a dyad* or cnn* model"
        )


def _check_plan(model: nn.Module, plan: PrunePlan) -> None:
    """Shrinking needs one width per GRU (DyAD) or per stage (CNN); say so instead of failing
    deep inside a config or a shape mismatch."""
    if set(plan.keep) != set(group_names(model)):
        raise ConfigError(f"plan groups {sorted(plan.keep)} must be {group_names(model)}")
    sizes = {name: len(idx) for name, idx in plan.keep.items()}
    if isinstance(model, DynamicVAE):
        ok, need = _dyad_plan_ok(model, plan, sizes)
    else:
        per = model.config.blocks_per_stage
        blocks = [sizes[n] for n in group_names(model) if n != HIDDEN]
        ok = min(sizes.values()) >= 1 and all(
            len(set(blocks[s : s + per])) == 1 for s in range(0, len(blocks), per)
        )
        need = "every block of a stage the same number (>= 1) of kept channels"
    if not ok:
        raise ConfigError(f"plan sizes {sizes} cannot be shrunk: make {need}")


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


def _top(score: torch.Tensor, count: int) -> torch.Tensor:
    return torch.topk(score, count).indices.sort().values


def _dropped(keep: torch.Tensor, n: int) -> torch.Tensor:
    gone = torch.ones(n, dtype=torch.bool)
    gone[keep] = False
    return gone.nonzero().squeeze(1)


def _row_norm(linear: nn.Linear) -> torch.Tensor:
    return (linear.weight.pow(2).sum(1) + linear.bias.pow(2)).sqrt()


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
            keep[f"{name}.l{layer}"] = _top(scores[layer], new_h)
    first, second = model.mean2latent[0], model.mean2latent[2]
    keep[MILEAGE] = _top(_row_norm(first) * second.weight.norm(dim=0), new_h // 2)
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
    _check_plan(model, plan)
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
            p[_gate_rows(_dropped(plan.keep[f"{rnn}.l{layer}"], h), h)] = 0
    # The decoder's initial state comes from latent2hidden: pruned units must start at 0.
    gone = [_dropped(plan.keep[f"decoder_rnn.l{i}"], h) for i in range(c.num_layers)]
    rows = _flat_index(gone, h, dirs)
    model.latent2hidden.weight[rows] = 0
    model.latent2hidden.bias[rows] = 0
    mileage = _dropped(plan.keep[MILEAGE], h // 2)
    model.mean2latent[0].weight[mileage] = 0
    model.mean2latent[0].bias[mileage] = 0


def _plan_cnn(model: CNN, keep_fraction: float) -> PrunePlan:
    c = model.config
    keep = {}
    for i, name in enumerate(group_names(model)[: len(c.widths) * c.blocks_per_stage]):
        block = model.get_submodule(name)
        score = block.bn.weight.abs() * block.conv.weight.flatten(1).norm(dim=1)
        width = c.widths[i // c.blocks_per_stage]
        keep[name] = _top(score, max(1, round(width * keep_fraction)))
    if c.hidden:
        score = _row_norm(model.classifier[2]) * model.classifier[-1].weight.norm(dim=0)
        keep[HIDDEN] = _top(score, max(1, round(c.hidden * keep_fraction)))
    return PrunePlan(keep)


def _shrink_cnn(model: CNN, plan: PrunePlan) -> tuple:
    _check_plan(model, plan)
    c, state = model.config, dict(model.state_dict())
    blocks = [n for n in group_names(model) if n != HIDDEN]
    prev = torch.arange(c.in_channels)
    for name in blocks:
        units = plan.keep[name]
        state[f"{name}.conv.weight"] = state[f"{name}.conv.weight"][units][:, prev]
        for stat in ("weight", "bias", "running_mean", "running_var"):
            state[f"{name}.bn.{stat}"] = state[f"{name}.bn.{stat}"][units]
        prev = units
    # Flatten of (C, side, side) puts channel c's pixels at c*side*side + p.
    area = (c.image_size // 2 ** len(c.widths)) ** 2
    flat = (prev[:, None] * area + torch.arange(area)).flatten()
    last = f"classifier.{len(model.classifier) - 1}"
    first = HIDDEN if c.hidden else last
    state[f"{first}.weight"] = state[f"{first}.weight"][:, flat]
    if c.hidden:
        units = plan.keep[HIDDEN]
        state[f"{HIDDEN}.weight"] = state[f"{HIDDEN}.weight"][units]
        state[f"{HIDDEN}.bias"] = state[f"{HIDDEN}.bias"][units]
        state[f"{last}.weight"] = state[f"{last}.weight"][:, units]
    widths = [len(plan.keep[b]) for b in blocks[:: c.blocks_per_stage]]
    hidden = len(plan.keep[HIDDEN]) if c.hidden else 0
    return replace(c, widths=widths, hidden=hidden), state


def _mask_cnn(model: CNN, plan: PrunePlan) -> None:
    # Zero filter, gamma and beta make BN output exactly 0, which ReLU and max-pool keep at 0.
    for name in group_names(model):
        if name == HIDDEN:
            gone = _dropped(plan.keep[name], model.config.hidden)
            params = [model.classifier[2].weight, model.classifier[2].bias]
        else:
            block = model.get_submodule(name)
            gone = _dropped(plan.keep[name], block.conv.out_channels)
            params = [block.conv.weight, block.bn.weight, block.bn.bias]
        for p in params:
            p[gone] = 0
