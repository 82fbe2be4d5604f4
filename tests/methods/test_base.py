"""Method configs are validated before anything runs: ``pytest tests/methods/test_base.py``."""

import pytest

from src.core.errors import ConfigError
from src.methods import BASELINE, list_methods, method_config


def test_registry_and_baseline():
    assert {"dynamic", "static", "qat", "fp16", "bf16"} <= set(list_methods())
    assert method_config(None).name == BASELINE
    assert method_config({"name": "baseline", "baseline_run_id": None}).name == BASELINE


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
    ],
)
def test_bad_values_name_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        method_config(values)
