"""The runtime registry and spec: ``python -m pytest tests/runtimes/test_base.py``."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from src.core.errors import ConfigError
from src.core.metrics import MetricSpec
from src.runtimes.base import (
    BUILT_IN,
    RUNTIMES,
    DeployContext,
    Deployed,
    RuntimeSpec,
    deploy,
    max_abs_diff,
    register_runtime,
)
from tests.conftest import ROOT

LIBRARIES = ("onnxruntime", "onnx", "onnxscript", "onnx_ir")
# What a fresh interpreter has loaded after choosing every runtime by name, and after importing
# the spec builders every job imports. Lightning (under src.cli.specs) loads torch._inductor's
# config itself, so inductor is checked on the runtimes package alone.
PROBE = """
import json, sys
from src.runtimes.base import RuntimeSpec
RuntimeSpec(("eager", "onnxruntime", "compile", "cuda"))
runtimes = sorted(sys.modules)
import src.cli.specs, src.pipeline.specs
print(json.dumps([runtimes, sorted(sys.modules)]))
"""


def _loaded(modules: list[str], *roots: str) -> list[str]:
    return [m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)]


def test_choosing_runtimes_imports_none_of_their_libraries():
    command = [sys.executable, "-c", PROBE]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runtimes, specs = json.loads(proc.stdout.splitlines()[-1])
    assert "src.runtimes.base" in runtimes and "torch" in runtimes  # the probe ran
    assert _loaded(runtimes, *LIBRARIES, "torch._inductor", "src.runtimes.onnxruntime") == []
    assert "src.cli.specs" in specs
    assert _loaded(specs, *LIBRARIES, "src.runtimes.onnxruntime", "src.runtimes.compile") == []


def test_runtime_spec_always_measures_eager_and_names_the_choices():
    assert RuntimeSpec(("onnxruntime",)).names == ("eager", "onnxruntime")
    assert RuntimeSpec(("eager",)).deployed == ()
    assert set(BUILT_IN) <= set(RUNTIMES.names())
    with pytest.raises(ConfigError, match="choose from"):
        RuntimeSpec(("tensorrt",))
    with pytest.raises(ConfigError, match="parity_tolerance"):
        RuntimeSpec(("eager",), parity_tolerance=-1)


def test_parity_tolerance_is_the_set_one_else_the_metrics_own():
    auroc = MetricSpec("test/auroc", margin=0.02)
    assert RuntimeSpec().tolerance(auroc) == 0.02
    assert RuntimeSpec(parity_tolerance=0.005).tolerance(auroc) == 0.005
    assert RuntimeSpec().tolerance(MetricSpec("test/f1")) == MetricSpec.PARITY_FALLBACK


def test_a_registered_runtime_deploys_and_is_forgotten_when_removed(tmp_path):
    @register_runtime("doubled", artifact="model/doubled.txt", size_metric="size/doubled_mb")
    def doubled(model: nn.Module, context: DeployContext) -> Deployed:
        return Deployed(nn.Sequential(model, nn.Identity()), form="the model, wrapped")

    try:
        runtime = RUNTIMES.get("doubled")
        assert (runtime.artifact, runtime.size_metric) == ("model/doubled.txt", "size/doubled_mb")
        assert not runtime.reuses_baseline_artifact  # it declares no way to reopen a file
        model = nn.Linear(3, 2)
        out = deploy("doubled", model, DeployContext(torch.randn(2, 3), (), tmp_path))
        assert out.form == "the model, wrapped"
        assert max_abs_diff(model, out.module, [torch.randn(4, 3)]) == 0.0
        assert max_abs_diff(model, nn.Linear(3, 2), [torch.randn(4, 3)]) > 0  # it can fail
        assert RuntimeSpec(("doubled",)).deployed == ("doubled",)
    finally:
        RUNTIMES.remove("doubled")
    with pytest.raises(ConfigError, match="choose from"):
        RuntimeSpec(("doubled",))


def test_a_runtimes_static_int8_calibrates_on_as_many_batches_as_the_method():
    from src.methods import method_config
    from src.methods.base import CALIBRATION_BATCHES

    assert method_config({"name": "static", "calibration_batches": 4}).calibration_count == 4
    mixed = {"name": "mixed", "scheme": "static", "calibration_batches": 3}
    assert method_config(mixed).calibration_count == 3
    for values in (None, {"name": "dynamic"}, {"name": "qat"}, {"name": "static"}):
        assert method_config(values).calibration_count == CALIBRATION_BATCHES == 16
