"""The CIFAR-style CNN: ``python -m pytest tests/models/test_cnn.py``."""

import pytest
import torch

from src.core.errors import ConfigError
from src.models import create_model, list_models


def test_default_width_is_the_seed_tables_size():
    model = create_model("cnn")
    params = sum(p.numel() for p in model.parameters())
    assert params == 4_576_842 and round(params * 4 / 1e6, 2) == 18.31


def test_blocks_are_fusable_conv_bn_relu():
    blocks = [m for m in create_model("cnn").features if len(list(m.children())) == 3]
    assert len(blocks) == 3
    for block in blocks:
        conv, bn, relu = block.conv, block.bn, block.relu
        assert isinstance(conv, torch.nn.Conv2d) and conv.bias is None
        assert isinstance(bn, torch.nn.BatchNorm2d) and isinstance(relu, torch.nn.ReLU)
    fused = torch.ao.quantization.fuse_modules(
        create_model("cnn_tiny").eval(), [["features.0.conv", "features.0.bn", "features.0.relu"]]
    )
    assert isinstance(fused.features[0].conv, torch.nn.intrinsic.ConvReLU2d)


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(in_channels=1, image_size=16, num_classes=4), dict(blocks_per_stage=2, hidden=0)],
)
def test_shapes(kw):
    model = create_model("cnn_tiny", **kw).eval()
    x = torch.randn(2, kw.get("in_channels", 3), kw.get("image_size", 32), kw.get("image_size", 32))
    assert model(x).shape == (2, kw.get("num_classes", 10))


def test_registry_holds_both_families_and_checks_sizes():
    assert {"cnn", "cnn_tiny", "dyad", "dyad_tiny"} <= set(list_models())
    with pytest.raises(ConfigError, match="image_size=30 must be divisible"):
        create_model("cnn", image_size=30)
