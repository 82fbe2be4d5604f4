"""The dynamo export, run in ONNX Runtime: ``pytest tests/runtimes/onnxruntime/test_export.py``."""

import pytest
import torch
from torch import nn

from src.models import create_model
from src.quant.deploy import float_twin
from src.runtimes.base import RuntimeUnavailable, max_abs_diff
from src.runtimes.onnxruntime.export import export_onnx, exportable_twin
from src.runtimes.onnxruntime.session import OrtModel
from tests.quant.test_deploy import dyad_variant


def test_cnn_exports_runs_any_batch_and_keeps_the_answer(tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn_tiny").train()
    exported = export_onnx(model, torch.randn(2, 3, 32, 32), tmp_path / "model.onnx")
    assert model.training  # the caller's mode is restored
    assert exported.path.is_file() and exported.size_mb > 0
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no partial file left
    runtime = OrtModel(exported.path, threads=1)
    inputs = [torch.randn(b, 3, 32, 32) for b in (1, 5)]  # the batch dimension is dynamic
    assert max_abs_diff(model, runtime, inputs) < 1e-4
    assert max_abs_diff(nn.Sequential(model, nn.ReLU()), runtime, inputs) > 1e-3  # can fail


class Unexportable(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on data: torch.export cannot trace it
            return x * 2
        return x


def test_a_failed_export_is_one_line_and_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeUnavailable, match="onnx export of Unexportable failed") as err:
        export_onnx(Unexportable(), torch.randn(2, 3), tmp_path / "model.onnx")
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_dyad_with_its_grus_exports_with_every_output(tmp_path):
    torch.manual_seed(0)
    model = create_model("dyad_tiny").eval()
    x = torch.randn(2, 128, len(model.config.channels))
    exported = export_onnx(model, x, tmp_path / "dyad.onnx")
    runtime = OrtModel(exported.path, threads=1)
    assert len(runtime(x)) == 5  # prediction and the latent statistics
    assert max_abs_diff(model, runtime, [x, torch.randn(3, 128, x.shape[-1])]) < 1e-4


@pytest.mark.parametrize("method", ["dynamic", "static"])
def test_an_int8_twin_exports_its_grus_whole_and_int8(method):
    x, variant = dyad_variant(method)
    twin = float_twin(variant)
    want = twin.model(x)
    twin = exportable_twin(twin)
    assert sorted(twin.int8_grus) == ["decoder_rnn", "encoder_rnn"]  # the quantizer unrolls them
    assert {"decoder_rnn", "encoder_rnn"} <= set(twin.int8_modules)
    assert not any(m.startswith("encoder_rnn.") for m in twin.int8_modules)
    assert type(twin.model.encoder_rnn) is nn.GRU  # one GRU node in the export
    assert max_abs_diff(twin.model, lambda _: want, [x]) < 1e-5  # the same function
