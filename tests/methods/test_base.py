"""Method configs are validated before anything runs: ``pytest tests/methods/test_base.py``."""

import pytest

from src.core.errors import ConfigError
from src.methods import BASELINE, BaselineConfig, apply_method, list_methods, method_config
from src.methods.base import MethodContext, handler
from src.methods.half import HalfConfig
from src.models import create_model


def test_registry_is_keyed_by_config_type_and_baseline_is_a_method():
    assert {"baseline", "chain", "dynamic", "static", "qat", "half", "prune"} <= set(list_methods())
    assert isinstance(method_config(None), BaselineConfig)
    config = method_config({"name": "baseline", "baseline_run_id": None})
    assert isinstance(config, BaselineConfig) and config.name == BASELINE
    model = create_model("dyad_tiny")
    same = apply_method(model, config, MethodContext())
    assert same is not model and same.state_dict().keys() == model.state_dict().keys()


def test_the_kind_picks_the_class_and_the_name_is_a_label():
    fp16 = method_config({"name": "fp16", "kind": "half", "dtype": "fp16"})
    bf16 = method_config({"name": "bf16", "kind": "half", "dtype": "bf16"})
    assert type(fp16) is type(bf16) is HalfConfig and handler(fp16) is handler(bf16)
    assert (fp16.name, fp16.dtype, bf16.dtype) == ("fp16", "fp16", "bf16")
    values = bf16.to_dict()
    assert values["kind"] == "half" and values["version"] == HalfConfig.VERSION
    assert method_config(values) == bf16


def test_an_artifact_of_another_version_is_refused():
    values = {**method_config({"name": "dynamic"}).to_dict(), "version": 99}
    with pytest.raises(ConfigError, match="version 99 is not this code's 1"):
        method_config(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "quantum"}, "Unknown method 'quantum'"),
        ({"name": "dynamic", "dtype": "int4"}, "method.dtype='int4'"),
        ({"name": "dynamic", "bits": 8}, "has no key\\(s\\) \\['bits'\\]"),
        ({"name": "static", "observer": "kl"}, "method.observer='kl'"),
        ({"name": "static", "calibration_batches": 0}, "calibration_batches=0"),
        ({"name": "qat", "epochs": 0}, "method.epochs=0"),
        ({"name": "qat", "lr": 5}, "method.lr=5"),
        ({"name": "fp16", "kind": "half", "dtype": "int8"}, "method.dtype='int8'"),
        ({"name": "prune", "steps": 2}, "has no key\\(s\\) \\['steps'\\]"),
    ],
)
def test_bad_values_name_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        method_config(values)
