"""Every config composes and builds: ``python -m pytest tests/test_configs.py``.

Each ``experiment=*`` (and none) x each ``+method=*`` composes, turns into validated specs, builds
its model and rebuilds the method's compressed structure on it, with the precision mix the method
promises; each experiment's datamodule is built on tiny generated data. The same method config,
applied for real to a tiny model of the experiment's family (fed the experiment's data), must
rebuild key for key and dtype for dtype, as a saved artifact is loaded. Model and task configs
hold exactly their registry's defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from src.cli.hydra_setup import task_defaults
from src.cli.specs import resolved, run_spec
from src.core.paths import ROOT
from src.data.sources import build_datamodule
from src.measure.precision import coverage_report
from src.methods import MethodContext, apply_method, rebuild
from src.methods.chain import ChainConfig
from src.methods.distill import DistillConfig, make_student
from src.models import create_model, list_models, model_defaults, model_family
from src.models.util import input_dtype
from src.quant.state import load_portable_state_dict, portable_state_dict
from src.tasks import TASKS
from tests.conftest import compose_cfg

EXPERIMENTS = [None, *sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))]
# The brand-1 and brand-2 architectures are large (seconds to build with every method): slow tier.
LARGE = {"dyad_brand1", "dyad_brand2"}
EXPERIMENT_CASES = [
    pytest.param(e, marks=pytest.mark.slow) if e in LARGE else e for e in EXPERIMENTS
]
METHODS = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml"))
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
STEPS = 8  # time steps of a sequence input: a decomposed GRU steps through them in Python
TAKEN = {"channels", "in_channels", "num_classes", "image_size"}  # model keys set by the data
# The precisions of the weights each method leaves, written from the methods' docstrings (an
# oracle, not read from the code): dynamic int8 leaves a CNN's convolutions fp32, static and QAT
# reach every weight, half casts them all; mixed is tested with no layer kept in fp32.
DYNAMIC = {"dyad": {"int8"}, "cnn": {"fp32", "int8"}}
FP32, INT8 = {"dyad": {"fp32"}, "cnn": {"fp32"}}, {"dyad": {"int8"}, "cnn": {"int8"}}
PRECISIONS = {
    "baseline": FP32,
    "prune": FP32,
    "prune_structured": FP32,
    "distill": FP32,
    "fp16": {"dyad": {"fp16"}, "cnn": {"fp16"}},
    "bf16": {"dyad": {"bf16"}, "cnn": {"bf16"}},
    "dynamic": DYNAMIC,
    "mixed": DYNAMIC,
    "prune_dynamic": DYNAMIC,
    "distill_dynamic": DYNAMIC,
    "static": INT8,
    "qat": INT8,
    "distill_qat": INT8,
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Tiny data of every kind an experiment reads: battery brands 1-3, CIFAR-10 batches."""
    from src.data.synth import generate
    from tests.data.test_image_sources import write_cifar

    root = tmp_path_factory.mktemp("roots")
    for brand in (1, 2, 3):
        generate("tiny", root / "battery", brand=brand, seed=0)
    write_cifar(root / "cifar", per_batch=20)
    return {"battery": root / "battery", "cifar10": root / "cifar", "digits": None}


def _composed(experiment: str | None, roots, tmp, *extra: str):
    """The experiment's config (and ``extra``) on the tiny data of its source."""
    overrides = [*([f"experiment={experiment}"] if experiment else []), *extra]
    root = roots[compose_cfg(*overrides, tmp=tmp).data.name]
    return compose_cfg(*overrides, *([f"data.root={root}"] if root else []), tmp=tmp)


@pytest.mark.parametrize("experiment", EXPERIMENT_CASES)
def test_every_experiment_builds_with_every_method(experiment, roots, tmp_path):
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the work
    base = run_spec(_composed(experiment, roots, tmp_path))
    data = build_datamodule(base.data)
    assert next(iter(data.train_dataloader()))["x"].shape[0] > 0
    assert base.is_baseline and base.task.primary in {m.name for m in base.task.metrics}
    for method in METHODS:
        spec = run_spec(_composed(experiment, roots, tmp_path, f"+method={method}"))
        assert spec.baseline_key == base.baseline_key, method  # the method never changes it
        assert spec.identity.method == method and spec.method.name == method
        model = spec.model.build().eval()
        for step in getattr(spec.method, "steps", [spec.method]):
            if isinstance(step, DistillConfig):  # the model's default student is its family's
                assert type(make_student(model, step.student)) is type(model), method
        if getattr(spec.method, "keep", ()) is None:  # mixed settles its fp32 layers on data;
            spec.method.keep = []  # an artifact always names them (none kept: all int8)
        expected = PRECISIONS[method][model_family(spec.model.name)]
        assert _precisions(rebuild(model, spec.method)) == expected, method
        assert _applied_and_rebuilt(spec, data) == expected, method
        if isinstance(spec.method, ChainConfig):
            assert len(spec.method.steps) >= 2


def test_every_method_has_an_expected_precision_mix():
    assert set(PRECISIONS) == set(METHODS)


class _Batch:
    """One batch of the experiment's inputs as calibration data."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def calibration_dataloader(self):
        return [{"x": self.x}]


def _fine_tune(x: torch.Tensor):
    """A stand-in for training: one forward pass in train mode, so QAT's fake quantizers see
    data; the weights stay as they are (their values are not what this test compares)."""

    @torch.no_grad()
    def fine_tune(model, epochs=None, lr=None, extra_loss=None) -> None:
        model.train()(x.to(input_dtype(model)))

    return fine_tune


_APPLIED: dict[str, set[str]] = {}  # by family and method config


def _applied_and_rebuilt(spec, data) -> set[str]:
    """:func:`_apply_and_rebuild`, once per model family and method config: the first
    experiment of a family feeds it its data, which only calibrates and sizes the input layer,
    so a second experiment with the same config would check the same thing again."""
    family = model_family(spec.model.name)
    key = json.dumps([family, spec.method.to_dict()], sort_keys=True)
    if key not in _APPLIED:
        taken = {k: v for k, v in spec.model.kwargs.items() if k in TAKEN}
        _APPLIED[key] = _apply_and_rebuild(create_model(f"{family}_tiny", **taken), spec, data)
    return _APPLIED[key]


def _apply_and_rebuild(tiny, spec, data) -> set[str]:
    """Apply ``spec.method`` for real to a tiny model of the experiment's family, then rebuild a
    fresh one from the method config as a saved artifact is loaded (builder + exported config,
    ``rebuild``, weights). Both must hold the same state-dict layout and precision table, and
    answer identically once the weights are loaded. Returns the applied model's precisions."""
    x = data.example_inputs(2)
    x = x[:, :STEPS] if x.dim() == 3 else x  # (batch, time, channels): a shorter sequence
    context = MethodContext(data=_Batch(x), fine_tune=_fine_tune(x), task=spec.task)
    applied = apply_method(tiny.eval(), spec.method, context).eval()
    fresh = create_model(f"{model_family(spec.model.name)}_tiny", **applied.export_config())
    rebuilt = rebuild(fresh.eval(), spec.method)
    state = portable_state_dict(applied)
    assert _layout(portable_state_dict(rebuilt)) == _layout(state), spec.method.name
    table = coverage_report(applied)[0]
    assert coverage_report(rebuilt)[0].equals(table), spec.method.name
    load_portable_state_dict(rebuilt, state)
    assert torch.equal(_answer(rebuilt, x), _answer(applied, x)), spec.method.name
    return set(table.precision)


def _layout(value, key: str = "") -> dict[str, object]:
    """Every leaf of a (nested) state dict: a tensor's dtype, shape and quantization scheme; a
    dtype or string itself; any other value its type."""
    if isinstance(value, dict | tuple | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        named = ((f"{key}.{name}" if key else str(name), item) for name, item in items)
        return {k: v for name, item in named for k, v in _layout(item, name).items()}
    if isinstance(value, torch.Tensor):
        scheme = value.qscheme() if value.is_quantized else None
        return {key: (value.dtype, tuple(value.shape), scheme)}
    return {key: value if isinstance(value, torch.dtype | str | bool) else type(value).__name__}


def _precisions(model) -> set[str]:
    return set(coverage_report(model)[0].precision)


def _answer(model, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = model(x.to(input_dtype(model)))
    return getattr(out, "prediction", out)


@pytest.mark.parametrize("name", MODELS)
def test_model_configs_hold_the_registry_defaults(name, roots, tmp_path):
    data = "experiment=cnn_digits" if name.startswith("cnn") else None
    cfg = compose_cfg(*([data] if data else []), f"model={name}", tmp=tmp_path)
    model = resolved(cfg)["model"]
    assert model.pop("name") == name and name in list_models()
    taken = {"channels", "in_channels", "num_classes", "image_size"}  # from the data, by design
    defaults = model_defaults(name)
    assert {k: v for k, v in model.items() if k not in taken} == {
        k: v for k, v in defaults.items() if k not in taken
    }


@pytest.mark.parametrize("name", TASKS.names())
def test_task_configs_hold_the_registry_defaults(name, tmp_path):
    data = "experiment=cnn_digits" if name == "classification" else "data=battery"
    task = resolved(compose_cfg(data, tmp=tmp_path))["task"]
    assert task.pop("name") == name and task == task_defaults(name)


def test_every_model_has_a_default_student():
    students = {p.stem for p in (ROOT / "conf" / "student").glob("*.yaml")}
    assert set(MODELS) <= students
