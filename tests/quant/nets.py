"""Small float networks with every module kind the quantization code meets: GRU, Linear,
Conv-BN-ReLU blocks. Tests of :mod:`src.quant` build on these, not on the project's models."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

GRU_INPUT = (4, 10, 6)  # (batch, time, features)
CONV_INPUT = (4, 3, 8, 8)


class GruNet(nn.Module):
    """A bidirectional two-layer GRU between Linear layers (DyAD's module kinds)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 12)
        self.gru = nn.GRU(12, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(32, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(self.embed(x))[0])


def block(cin: int, cout: int) -> nn.Sequential:
    """A ``conv``/``bn``/``relu`` block, the pattern :func:`src.quant.backend.fuse_blocks` fuses."""
    layers = OrderedDict(conv=nn.Conv2d(cin, cout, 3, padding=1), bn=nn.BatchNorm2d(cout))
    return nn.Sequential(OrderedDict(**layers, relu=nn.ReLU()))


class ConvNet(nn.Module):
    """Two conv blocks and a Linear head (the CNN's module kinds)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(block(3, 8), nn.MaxPool2d(2), block(8, 8))
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def inputs(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def build(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    """A seeded ``cls()`` in eval mode, its batch norms holding non-trivial statistics."""
    torch.manual_seed(seed)
    model = cls()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()
