"""Static int8 in ONNX Runtime from the variant's own scales:
``python -m pytest tests/runtimes/onnxruntime/test_qdq.py``."""

import onnx
import onnxruntime.quantization
import pytest
import torch

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.quant.deploy import float_twin
from src.quant.scales import static_layers
from src.runtimes.base import DeployContext, deploy, max_abs_diff
from src.runtimes.onnxruntime.export import export_onnx, exportable_twin
from src.runtimes.onnxruntime.gru import expand_grus
from src.runtimes.onnxruntime.qdq import write_qdq
from src.runtimes.onnxruntime.quantize import ORT_CALIBRATED, int8_nodes, quantize_twin
from tests.runtimes.fakes import Calibration


def _static(name: str, shape: tuple[int, ...]):
    """(example batch, calibration batches, ``name`` compressed by static int8)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    calib = [torch.randn(8, *shape) for _ in range(2)]
    context = MethodContext(data=Calibration(calib))
    return (
        torch.randn(2, *shape),
        calib,
        apply_method(model, method_config({"name": "static"}), context),
    )


def _no_ort_calibration(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("ORT recalibrated a variant whose own scales fit")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", refuse)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("cnn_tiny", (3, 32, 32)),
        ("dyad_tiny", (128, len(create_model("dyad_tiny").config.channels))),
    ],
)
def test_static_variant_runs_with_its_own_scales_every_layer_int8(
    name, shape, tmp_path, monkeypatch
):
    _no_ort_calibration(monkeypatch)
    x, calib, variant = _static(name, shape)
    deployed = deploy("onnxruntime", variant, DeployContext(x, calib, tmp_path, threads=1))
    assert "ORT static int8 (own scales)" in deployed.form
    assert deployed.int8_ops == len(float_twin(variant).int8_modules) or name == "dyad_tiny"
    assert deployed.int8_ops > 0
    probe = torch.randn(3, *x.shape[1:])
    # The eager int8 arithmetic up to rounding order: as close to eager as the float twin (no
    # activation rounding at all). ORT's recalibration measured 6x further off on dyad_tiny.
    twin_diff = max_abs_diff(variant, float_twin(variant).model, [probe])
    assert max_abs_diff(variant, deployed.module, [probe]) < 1.5 * twin_diff
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    # int8 weights replace the float ones in the shipped file, which holds nothing unread
    graph = onnx.load(str(deployed.artifact)).graph
    read = {name for node in graph.node for name in node.input}
    assert all(i.name in read for i in graph.initializer)
    weights = [i for i in graph.initializer if len(i.dims) >= 2]
    floats = [i.name for i in weights if i.data_type == onnx.TensorProto.FLOAT]
    assert floats == [] if name == "cnn_tiny" else len(floats) < len(weights) / 4, floats


def _exported(variant, x, tmp_path):
    twin = exportable_twin(float_twin(variant))
    path = export_onnx(twin.model, x, tmp_path / "float.onnx").path
    return twin, path


def test_a_weight_no_layer_holds_is_named(tmp_path):
    x, _, variant = _static("cnn_tiny", (3, 32, 32))
    twin, path = _exported(variant, x, tmp_path)
    model = onnx.load(str(path))
    expand_grus(model, twin.model, set(twin.int8_grus))
    nodes = int8_nodes(model, twin.int8_modules)
    layers = static_layers(variant, x)
    with pytest.raises(ValueError, match=f"node {nodes[-1]}: its weight is no static int8"):
        write_qdq(model, nodes, layers[:-1])


def test_scales_that_do_not_fit_fall_back_to_ort_calibration(tmp_path):
    x, calib, variant = _static("cnn_tiny", (3, 32, 32))
    twin, path = _exported(variant, x, tmp_path)
    stale = static_layers(variant, x)[1:]  # as if one layer had not run on the example
    source = quantize_twin(twin, path, tmp_path / "int8.onnx", calib, stale)
    assert source == ORT_CALIBRATED and (tmp_path / "int8.onnx").is_file()
