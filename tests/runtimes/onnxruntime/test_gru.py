"""GRU nodes unrolled into MatMuls: ``pytest tests/runtimes/onnxruntime/test_gru.py``."""

from collections import Counter

import onnx
import torch
from torch import nn

from src.runtimes.base import max_abs_diff
from src.runtimes.onnxruntime.export import export_onnx
from src.runtimes.onnxruntime.gru import expand_grus
from src.runtimes.onnxruntime.session import OrtModel


class Encoder(nn.Module):
    def __init__(self, bidirectional: bool):
        super().__init__()
        self.rnn = nn.GRU(3, 5, num_layers=2, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        out, h = self.rnn(x)
        return out, h


def test_unrolled_gru_gives_the_fused_gru_answer(tmp_path):
    torch.manual_seed(0)
    for bidirectional in (False, True):
        model = Encoder(bidirectional).eval()
        x = torch.randn(2, 7, 3)
        path = export_onnx(model, x, tmp_path / "gru.onnx").path
        graph = onnx.load(str(path))
        assert expand_grus(graph, model) == 2  # one node per layer
        ops = Counter(node.op_type for node in graph.graph.node)
        assert "GRU" not in ops and ops["MatMul"] == (1 + 7) * 2 * (2 if bidirectional else 1)
        onnx.save(graph, str(tmp_path / "unrolled.onnx"))
        runtime = OrtModel(tmp_path / "unrolled.onnx", threads=1)
        assert max_abs_diff(model, runtime, [x, torch.randn(4, 7, 3)]) < 1e-5


def test_a_one_step_sequence_unrolls_too(tmp_path):
    torch.manual_seed(0)
    model = Encoder(bidirectional=True).eval()
    x = torch.randn(2, 1, 3)
    path = export_onnx(model, x, tmp_path / "gru.onnx").path
    graph = onnx.load(str(path))
    assert expand_grus(graph, model) == 2
    onnx.save(graph, str(tmp_path / "unrolled.onnx"))
    runtime = OrtModel(tmp_path / "unrolled.onnx", threads=1)
    assert max_abs_diff(model, runtime, [x, torch.randn(3, 1, 3)]) < 1e-5
