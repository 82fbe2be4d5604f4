"""The registries' defaults reach the composed config, and no YAML restates one."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from src.cli.specs import benchmark_defaults, latency_spec, runtime_spec, trainer_spec
from src.core.paths import ROOT
from src.measure.latency import LatencySpec
from src.methods import method_defaults
from src.methods.base import KINDS
from src.pipeline.specs import TrainerSpec
from src.runtimes.base import RuntimeSpec
from tests.conftest import compose_cfg

METHOD_YAMLS = sorted((ROOT / "conf" / "method").glob("*.yaml"))
REGISTRY = "/registry/{group}@_here_"


def _node(path) -> dict:
    return yaml.safe_load(path.read_text())


def _registry_entry(node: dict, group: str) -> str:
    entries = [e for e in node.get("defaults", []) if isinstance(e, dict)]
    return next(
        e[REGISTRY.format(group=group)] for e in entries if REGISTRY.format(group=group) in e
    )


@pytest.mark.parametrize("path", METHOD_YAMLS, ids=lambda p: p.stem)
def test_a_method_yaml_extends_its_kind_and_states_only_what_differs(path):
    node = _node(path)
    kind = node.get("kind") or node["name"]
    assert _registry_entry(node, "method") == kind
    defaults = method_defaults(kind)
    restated = [k for k, v in node.items() if k in defaults and defaults[k] == v]
    assert not restated, f"{path.name} restates its dataclass's defaults {restated}"
    fields = {f.name for f in dataclasses.fields(KINDS.get(kind))}
    assert set(node) - {"defaults", "kind"} <= fields


@pytest.mark.parametrize(
    ("path", "group", "owned"),
    [
        ("trainer/default.yaml", "trainer", TrainerSpec.defaults()),
        ("benchmark/cpu.yaml", "benchmark", benchmark_defaults()),
    ],
)
def test_trainer_and_benchmark_yamls_state_only_what_differs(path, group, owned):
    node = _node(ROOT / "conf" / path)
    assert _registry_entry(node, group) == "default"
    assert not [k for k, v in node.items() if k in owned and owned[k] == v]


def test_the_specs_built_from_the_defaults_are_the_dataclasses_defaults():
    values = benchmark_defaults()
    assert latency_spec(values) == LatencySpec()
    assert runtime_spec(values) == RuntimeSpec()
    assert trainer_spec(TrainerSpec.defaults()) == TrainerSpec()


def test_composed_configs_carry_every_default(tmp_path):
    cfg = compose_cfg("+method=prune_structured", tmp=tmp_path)
    assert cfg.method.structured is True and cfg.method.epochs == 3  # the YAML's own
    assert cfg.method.ladder == method_defaults("prune")["ladder"]  # the dataclass's
    assert cfg.trainer.resume == TrainerSpec.resume and cfg.trainer.deterministic is True
    assert cfg.benchmark.iters == LatencySpec.iters
    assert list(cfg.benchmark.runtimes) == list(RuntimeSpec().names)
