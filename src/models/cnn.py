"""A CIFAR-10-style CNN built from Conv-BatchNorm-ReLU blocks.

Every block is an ``nn.Sequential`` named ``conv``/``bn``/``relu`` so static quantization can fuse
it in one call. The default width (64-128-256 channels, a 1024-unit hidden layer) gives
4.58 M parameters, 18.3 MB in fp32: the size of the CNN in the static/dynamic/QAT CIFAR-10 seed
table, whose bulk is likewise the first fully connected layer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from torch import nn

from src.core.errors import ConfigError
from src.models.registry import register_model


@dataclass
class CNNConfig:
    """Architecture of :class:`CNN`.

    Attributes:
        widths: Output channels of each stage; every stage ends with a 2x2 max-pool.
        blocks_per_stage: Conv-BN-ReLU blocks per stage (depth).
        hidden: Units of the hidden fully connected layer (0: none).
        dropout: Dropout before the classifier.
        in_channels: Image channels (3 for CIFAR-10, 1 for digits).
        num_classes: Output classes.
        image_size: Input height and width.
    """

    widths: list[int] = field(default_factory=lambda: [64, 128, 256])
    blocks_per_stage: int = 1
    hidden: int = 1024
    dropout: float = 0.25
    in_channels: int = 3
    num_classes: int = 10
    image_size: int = 32
    FAMILY: ClassVar[str] = "cnn"

    def __post_init__(self) -> None:
        self.widths = [int(w) for w in self.widths]
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"model.widths={self.widths} needs at least one positive width")
        if self.blocks_per_stage < 1 or self.hidden < 0 or not 0 <= self.dropout < 1:
            raise ConfigError("model.blocks_per_stage >= 1, model.hidden >= 0, 0 <= dropout < 1")
        if self.image_size % 2 ** len(self.widths):
            raise ConfigError(
                f"data.image_size={self.image_size} must be divisible by 2**len(model.widths)="
                f"{2 ** len(self.widths)} (one 2x2 pool per stage)"
            )
        if self.in_channels < 1 or self.num_classes < 2:
            raise ConfigError("in_channels must be >= 1 and num_classes >= 2")


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Conv3x3 (no bias: BatchNorm has one) -> BatchNorm -> ReLU, fusable as one unit."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(cout),
            relu=nn.ReLU(inplace=False),
        )
    )


class CNN(nn.Module):
    """Stages of Conv-BN-ReLU blocks and max-pools, then a small MLP head."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        layers, cin = [], config.in_channels
        for width in config.widths:
            for _ in range(config.blocks_per_stage):
                layers.append(conv_block(cin, width))
                cin = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.widths)
        flat = cin * side * side
        head = [nn.Flatten(), nn.Dropout(config.dropout)]
        if config.hidden:
            head += [nn.Linear(flat, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
        head.append(nn.Linear(config.hidden or flat, config.num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))

    def static_quant_regions(self) -> list[str]:
        """Every op here has an int8 kernel, so each half runs end to end in int8 (one
        quantize at the input, one dequantize at the logits) instead of per layer."""
        return ["features", "classifier"]

    def export_config(self) -> dict:
        """Plain-dict config that rebuilds this architecture via ``create_model('cnn', **cfg)``."""
        return asdict(self.config)


@register_model(CNNConfig)
def cnn(config: CNNConfig) -> CNN:
    """Default width: 4.58 M parameters, 18.3 MB fp32 (the seed table's CNN size)."""
    return CNN(config)


@register_model(CNNConfig, widths=[8, 16], hidden=32, dropout=0.0)
def cnn_tiny(config: CNNConfig) -> CNN:
    """Two narrow stages: a few thousand parameters, for tests."""
    return CNN(config)
