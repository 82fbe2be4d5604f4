"""Structured pruning of the CNN: conv channels (with their BatchNorm entries) and the hidden
neurons of the classifier.

Groups: ``features.{i}`` (conv blocks) and ``classifier.2`` (hidden). A conv channel's importance
is ``|bn.gamma| * ||filter||``, since BatchNorm rescales the filter's output; a Linear neuron's
``||row, bias|| * ||outgoing column||``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from src.models.cnn import CNN
from src.models.surgery import PrunePlan, Surgery, dropped, register_surgery, row_norm, top

HIDDEN = "classifier.2"


@register_surgery(CNN)
class CnnSurgery(Surgery):
    def groups(self, model: CNN) -> list[str]:
        return _groups(model)

    def plan(self, model: CNN, keep_fraction: float) -> PrunePlan:
        return _plan_cnn(model, keep_fraction)

    def plan_problem(self, model: CNN, plan: PrunePlan) -> str | None:
        sizes = {name: len(idx) for name, idx in plan.keep.items()}
        per = model.config.blocks_per_stage
        blocks = [sizes[n] for n in _groups(model) if n != HIDDEN]
        ok = min(sizes.values()) >= 1 and all(
            len(set(blocks[s : s + per])) == 1 for s in range(0, len(blocks), per)
        )
        return None if ok else "every block of a stage the same number (>= 1) of kept channels"

    def shrunk(self, model: CNN, plan: PrunePlan) -> tuple:
        return _shrink_cnn(model, plan)

    def mask(self, model: CNN, plan: PrunePlan) -> None:
        _mask_cnn(model, plan)


def _groups(model: CNN) -> list[str]:
    blocks = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, nn.Sequential)]
    return blocks + ([HIDDEN] if model.config.hidden else [])


def _plan_cnn(model: CNN, keep_fraction: float) -> PrunePlan:
    c = model.config
    keep = {}
    for i, name in enumerate(_groups(model)[: len(c.widths) * c.blocks_per_stage]):
        block = model.get_submodule(name)
        score = block.bn.weight.abs() * block.conv.weight.flatten(1).norm(dim=1)
        width = c.widths[i // c.blocks_per_stage]
        keep[name] = top(score, max(1, round(width * keep_fraction)))
    if c.hidden:
        score = row_norm(model.classifier[2]) * model.classifier[-1].weight.norm(dim=0)
        keep[HIDDEN] = top(score, max(1, round(c.hidden * keep_fraction)))
    return PrunePlan(keep)


def _shrink_cnn(model: CNN, plan: PrunePlan) -> tuple:
    c, state = model.config, dict(model.state_dict())
    blocks = [n for n in _groups(model) if n != HIDDEN]
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
    for name in _groups(model):
        if name == HIDDEN:
            gone = dropped(plan.keep[name], model.config.hidden)
            params = [model.classifier[2].weight, model.classifier[2].bias]
        else:
            block = model.get_submodule(name)
            gone = dropped(plan.keep[name], block.conv.out_channels)
            params = [block.conv.weight, block.bn.weight, block.bn.bias]
        for p in params:
            p[gone] = 0
