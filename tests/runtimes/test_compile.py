"""The compile runtime, int8 through PT2E: ``python -m pytest tests/runtimes/test_compile.py``.

Slow: inductor compiles C++ for every model and batch size (seconds each).
"""

import pytest
import torch

from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.runtimes.base import DeployContext, RuntimeUnavailable, deploy, max_abs_diff
from tests.runtimes.fakes import Calibration

pytestmark = pytest.mark.slow


def _variant(name: str, method: str, shape: tuple[int, ...]):
    torch.manual_seed(0)
    model = create_model(name).eval()
    calib = [torch.randn(*shape) for _ in range(2)]
    context = MethodContext(data=Calibration(calib))
    return apply_method(model, method_config({"name": method}), context), calib


def test_compiled_fp32_gives_the_eager_answer(tmp_path):
    model, _ = _variant("cnn_tiny", "baseline", (2, 3, 32, 32))
    deployed = deploy("compile", model, DeployContext(torch.randn(2, 3, 32, 32), (), tmp_path))
    assert deployed.artifact is None and "inductor" in deployed.form
    assert deployed.int8_ops == 0 and deployed.float_ops > 0
    assert max_abs_diff(model, deployed.module, [torch.randn(3, 3, 32, 32)]) < 1e-4


@pytest.mark.parametrize("method", ["static", "dynamic"])
def test_cnn_int8_variant_compiles_to_onednn_int8_kernels(method, tmp_path):
    variant, calib = _variant("cnn_tiny", method, (8, 3, 32, 32))
    context = DeployContext(torch.randn(2, 3, 32, 32), calib, tmp_path)
    deployed = deploy("compile", variant, context)
    assert deployed.form == f"torch.compile PT2E x86 {method} int8"
    assert deployed.int8_ops > 0  # counted in inductor's code: no silent fp32 fallback
    if method == "static":  # every conv and linear was int8 in eager, and is here
        assert deployed.float_ops == 0
    for batch in (1, 5):  # each batch size compiles again, with freezing
        x = torch.randn(batch, 3, 32, 32)
        scale = variant(x).abs().max().item()
        assert max_abs_diff(variant, deployed.module, [x]) < 0.1 * scale


def test_int8_gru_variant_is_one_line_pointing_to_onnxruntime(tmp_path):
    channels = len(create_model("dyad_tiny").config.channels)
    variant, calib = _variant("dyad_tiny", "dynamic", (4, 16, channels))
    with pytest.raises(RuntimeUnavailable, match="int8 GRU.*onnxruntime") as err:
        deploy("compile", variant, DeployContext(calib[0][:2], calib, tmp_path))
    assert "\n" not in str(err.value)


def test_compiled_module_keeps_the_eager_models_helpers(tmp_path):
    channels = len(create_model("dyad_tiny").config.channels)
    model, _ = _variant("dyad_tiny", "baseline", (2, 16, channels))
    x = torch.randn(2, 16, channels)
    deployed = deploy("compile", model, DeployContext(x, (), tmp_path))
    assert "graph break" in deployed.form  # dynamo leaves nn.GRU to eager: said, not hidden
    assert torch.equal(deployed.module.split_target(x), model.split_target(x))
    assert max_abs_diff(model, deployed.module, [torch.randn(3, 16, channels)]) < 1e-4
