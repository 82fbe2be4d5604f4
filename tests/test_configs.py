"""Every config composes and builds: ``python -m pytest tests/test_configs.py``.

Each ``experiment=*`` (and none) x each ``+method=*`` composes, turns into validated specs, builds
its model and rebuilds the method's compressed structure on it; each experiment's datamodule is
built on tiny generated data. Model and task configs hold exactly their registry's defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from src.cli.hydra_setup import task_defaults
from src.cli.specs import resolved, run_spec
from src.core.paths import ROOT
from src.data.sources import build_datamodule
from src.methods import rebuild
from src.methods.chain import ChainConfig
from src.methods.distill import DistillConfig, make_student
from src.models import list_models, model_defaults
from src.tasks import TASKS
from tests.conftest import compose_cfg

EXPERIMENTS = [None, *sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))]
# The brand-1 and brand-2 architectures are large (seconds to build with every method): slow tier.
LARGE = {"dyad_brand1", "dyad_brand2"}
EXPERIMENT_CASES = [pytest.param(e, marks=pytest.mark.slow) if e in LARGE else e
                    for e in EXPERIMENTS]  # fmt: skip
METHODS = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml"))
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


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
        rebuilt = rebuild(model, spec.method)
        assert rebuilt is not None, method
        if isinstance(spec.method, ChainConfig):
            assert len(spec.method.steps) >= 2


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
