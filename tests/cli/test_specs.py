"""From the composed config to specs, and the key that picks a variant's baseline:
``python -m pytest tests/cli/test_specs.py``."""

from __future__ import annotations

import pytest
import torch

from src.cli.specs import baseline_key, resolved, run_spec, step_key
from src.core.errors import ConfigError
from src.methods import BaselineConfig
from src.methods.dynamic import DynamicConfig
from tests.conftest import compose_cfg

# Overrides that change how a run is executed, logged, scored or compressed: never the baseline.
SAME = [
    "data.num_workers=2",
    "data.cache_dir=/elsewhere",
    "data.cache_workers=1",
    "data.eval_batch_size=64",
    "data.synthetic.dir=/elsewhere",
    "trainer.enable_progress_bar=true",
    "trainer.enable_model_summary=true",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "benchmark.iters=3",
    "benchmark.threads=1",
    "logger.experiment_name=other",
    "run_name=mine",
    "task.evaluation.alpha=0.1",
    "task.evaluation.n_boot=10",
    "student.hidden_size=4",
    "+method=dynamic",
    "+method=distill",
    "+method=prune_dynamic",
]
# Overrides that define the trained fp32 model: each must give another baseline.
DIFFERENT = [
    "model=dyad_tiny",
    "model.hidden_size=32",
    "model.reference_hidden_reshape=true",
    "data.fold=1",
    "data.brand=1",
    "data.root=/data",
    "data.split_seed=1",
    "data.normalizer=reference",
    "data.batch_size=64",
    "data.synthetic.preset=tiny",
    "task.evaluation.threshold_rule=normal_max",  # trains on the calibration normals too
    "task.evaluation.calibration_normals=0.5",
    "task.loss.x0=100",
    "task.loss.anneal0=0.01",
    "optim.lr=0.001",
    "optim.weight_decay=0",
    "trainer.max_epochs=3",
    "trainer.deterministic=false",
    "trainer.threads=2",  # other weights: demo fold 0 false-alarm rate 0.167 (1 thread), 0.083
    "seed=1",
    "experiment=dyad_brand3",
]


RULES = ("normal_max", "youden", "reference")


def _key(tmp, *overrides: str) -> str:
    return baseline_key(resolved(compose_cfg(*overrides, tmp=tmp)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    return _key(tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize("override", SAME)
def test_what_does_not_define_the_baseline_leaves_its_key(override, reference, tmp_path):
    assert _key(tmp_path, override) == reference


@pytest.mark.parametrize("override", DIFFERENT)
def test_what_defines_the_baseline_changes_its_key(override, reference, tmp_path):
    assert _key(tmp_path, override) != reference


def test_the_key_ignores_where_the_job_writes(reference, tmp_path):
    assert _key(tmp_path / "elsewhere", "paths.data_dir=/x") == reference


def test_a_step_key_adds_what_a_method_computes_by_to_the_baseline(tmp_path):
    def key(*overrides: str) -> str:
        return step_key(resolved(compose_cfg(*overrides, tmp=tmp_path)))

    base = key()
    assert key("benchmark.iters=3", "trainer.enable_progress_bar=false") == base
    for deciding in ("seed=1", "student.hidden_size=48", "task.evaluation.n_boot=21"):
        assert key(deciding) != base, deciding
    assert run_spec(compose_cfg(tmp=tmp_path)).step_key == base


def test_run_spec_is_typed_and_validated(tmp_path):
    spec = run_spec(compose_cfg("model=dyad_tiny", "seed=5", tmp=tmp_path))
    assert isinstance(spec.method, BaselineConfig) and spec.is_baseline
    assert spec.identity.model == "dyad_tiny" and spec.identity.seed == 5
    assert spec.identity.data_variant == "brand3" and spec.identity.fold == "0"
    assert spec.model.kwargs["hidden_size"] == 8 and "name" not in spec.model.kwargs
    assert spec.trainer.max_epochs == 5 and "max_epochs" not in spec.trainer.options
    assert spec.latency.batch_sizes == (1, 128) and spec.optim.lr == 0.005
    assert "method.name" not in spec.config.baseline_params
    method = run_spec(compose_cfg("model=dyad_tiny", "+method=dynamic", tmp=tmp_path))
    assert isinstance(method.method, DynamicConfig) and not method.is_baseline
    assert method.config.params["method.dtype"] == "int8"
    assert "method.dtype" not in method.config.baseline_params
    assert method.as_baseline().is_baseline and method.as_baseline().identity.method == "baseline"


def test_the_data_holds_out_what_the_threshold_rule_needs_and_nothing_else(tmp_path):
    default = run_spec(compose_cfg(tmp=tmp_path))
    assert default.data["calibration_normals"] == default.task.held_out_normals == 0.4
    for rule in RULES:  # the paper's split: no key added
        spec = run_spec(compose_cfg(f"task.evaluation.threshold_rule={rule}", tmp=tmp_path))
        assert "calibration_normals" not in spec.data
    assert len({_key(tmp_path, f"task.evaluation.threshold_rule={r}") for r in RULES}) == 1


def test_a_config_that_does_not_resolve_is_one_config_error(tmp_path):
    cfg = compose_cfg("model=cnn_tiny", tmp=tmp_path)  # battery data has no in_channels
    with pytest.raises(ConfigError, match="does not resolve.*data.in_channels"):
        run_spec(cfg)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
        (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5"),
        (["optim.lr=0"], "optim.lr=0"),
        (["optim.lr=abc"], "optim.lr='abc' must be a number"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["data.eval_batch_size=-1"], "data.eval_batch_size=-1"),
        (["data.num_workers=-1"], "data.num_workers=-1"),
        (["seed=-1"], "seed=-1"),
        (["benchmark.iters=0"], "iters=0"),
        (["benchmark.batch_sizes=[0]"], "batch_sizes"),
        (["+method=prune", "method.sparsity=1.5"], "method.sparsity=1.5"),
        (["+method=static", "method.calibration_batches=0"], "method.calibration_batches=0"),
        (["+method=qat", "method.epochs=0"], "method.epochs=0"),
    ],
)
def test_a_bad_number_is_one_line_naming_the_key_before_anything_runs(overrides, names, tmp_path):
    with pytest.raises(ConfigError) as err:
        run_spec(compose_cfg(*overrides, tmp=tmp_path))
    assert names in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
def test_gpu_training_without_a_gpu_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no CUDA device: train on the CPU"):
        run_spec(compose_cfg("trainer=gpu", tmp=tmp_path))
