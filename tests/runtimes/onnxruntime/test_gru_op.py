"""nn.GRU written as ONNX GRU nodes: ``pytest tests/runtimes/onnxruntime/test_gru_op.py``."""

from pathlib import Path

import onnx
import pytest
import torch
import yaml
from torch import nn

from src.models import create_model
from src.runtimes.base import max_abs_diff
from src.runtimes.onnxruntime.export import export_onnx
from src.runtimes.onnxruntime.gru_op import OnnxGRU, with_onnx_grus
from src.runtimes.onnxruntime.session import OrtModel

STUDENTS = Path(__file__).parents[3] / "conf" / "student"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_layers=1, bidirectional=True),
        dict(num_layers=2, bidirectional=False),
        dict(num_layers=2, bidirectional=True, bias=False),
    ],
)
def test_onnx_gru_is_the_same_function_in_eager(kwargs):
    torch.manual_seed(0)
    gru = nn.GRU(5, 6, batch_first=True, **kwargs).eval()
    x, h0 = (
        torch.randn(3, 7, 5),
        torch.randn(kwargs["num_layers"] * (1 + kwargs["bidirectional"]), 3, 6),
    )
    ours = OnnxGRU(gru)
    for args in ((x,), (x, h0)):
        want, got = gru(*args), ours(*args)
        assert all(torch.allclose(w, g, atol=1e-6) for w, g in zip(want, got, strict=True))
    other = nn.GRU(5, 6, batch_first=True, **kwargs).eval()  # the test can tell models apart
    assert not torch.allclose(other(x)[0], ours(x)[0], atol=1e-3)


def test_a_model_without_grus_is_not_copied():
    model = create_model("cnn_tiny")
    assert with_onnx_grus(model) is model
    dyad = create_model("dyad_tiny")
    swapped = with_onnx_grus(dyad)
    assert isinstance(swapped.encoder_rnn, OnnxGRU) and isinstance(dyad.encoder_rnn, nn.GRU)


def _layouts():
    for name in ("dyad_brand1", "dyad_brand2", "dyad_brand3"):
        yield name, {}
        yield name, yaml.safe_load((STUDENTS / f"{name}.yaml").read_text())


@pytest.mark.parametrize(("name", "student"), list(_layouts()))
def test_every_brand_layout_and_its_student_exports_and_keeps_parity(tmp_path, name, student):
    """Each reference configuration and its default distillation student: a batch-of-one
    example, a dynamic batch, one GRU node per layer, the eager answer in ONNX Runtime."""
    torch.manual_seed(0)
    model = create_model(name, **student).eval()
    channels = len(model.config.channels)
    exported = export_onnx(model, torch.randn(1, 128, channels), tmp_path / "m.onnx")
    nodes = [n.op_type for n in onnx.load(str(exported.path)).graph.node]
    assert nodes.count("GRU") == 2 * model.config.num_layers and "Loop" not in nodes
    runtime = OrtModel(exported.path, threads=2)
    inputs = [torch.randn(b, 128, channels) for b in (1, 3)]
    assert max_abs_diff(model, runtime, inputs) < 1e-4
