"""Variants in ONNX Runtime, each in its own precision:
``python -m pytest tests/runtimes/onnxruntime/test_session.py``."""

import pytest
import torch

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.runtimes.base import DeployContext, RuntimeUnavailable, deploy, max_abs_diff
from tests.runtimes.fakes import Calibration


@pytest.mark.parametrize("method", ["baseline", "dynamic", "static"])
def test_cnn_variant_runs_in_onnxruntime_in_its_own_precision(method, tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn_tiny").eval()
    calib = [torch.randn(8, 3, 32, 32) for _ in range(2)]
    variant = apply_method(
        model, method_config({"name": method}), MethodContext(data=Calibration(calib))
    )
    context = DeployContext(torch.randn(2, 3, 32, 32), calib, tmp_path, threads=1)
    deployed = deploy("onnxruntime", variant, context)
    assert deployed.artifact.is_file() and deployed.size_mb > 0
    if method == "baseline":
        assert deployed.form == "ORT fp32" and deployed.int8_ops == 0
    else:  # int8 in the runtime, counted on the graph ORT runs: no silent fp32 fallback
        own = " (own scales)" if method == "static" else ""  # static: QDQ from eager's scales
        assert deployed.form == f"ORT {method} int8{own}" and deployed.int8_ops > 0
    x = torch.randn(3, 3, 32, 32)
    scale = variant(x).abs().max().item()
    assert max_abs_diff(variant, deployed.module, [x]) < 0.1 * scale
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no stray files


def test_half_precision_is_one_line_not_a_crash(tmp_path):
    model = create_model("cnn_tiny").half()
    context = DeployContext(torch.randn(2, 3, 32, 32), (), tmp_path)
    with pytest.raises(RuntimeUnavailable, match="half-precision") as err:
        deploy("onnxruntime", model, context)
    assert "\n" not in str(err.value)
