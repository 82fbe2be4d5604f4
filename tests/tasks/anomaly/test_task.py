"""The anomaly task's vehicle protocol settings:
``python -m pytest tests/tasks/anomaly/test_task.py``."""

from __future__ import annotations

import pytest

from src.core import schema
from src.core.errors import ConfigError
from src.tasks import create_task
from src.tasks.anomaly.task import VehicleProtocol


def test_the_default_holds_normals_out_and_normal_max_is_the_paper_protocol():
    default = create_task({"name": "anomaly"})
    assert default.evaluation.threshold_rule == "conformal" and default.evaluation.alpha == 0.05
    assert default.held_out_normals == 0.4
    paper = create_task({"name": "anomaly", "evaluation": {"threshold_rule": "normal_max"}})
    assert paper.held_out_normals == 0  # one key: nothing held out, every normal trained on
    for rule in ("youden", "reference"):
        assert VehicleProtocol(threshold_rule=rule, calibration_normals=3).held_out_normals == 0
    assert VehicleProtocol(calibration_normals=20).held_out_normals == 20


def test_the_board_knows_the_operating_point_intervals():
    names = {m.name: m for m in create_task({"name": "anomaly"}).metrics}
    for end in schema.interval("test/recall"):
        assert names[end].higher_is_better
    for end in schema.interval("test/false_alarm_rate"):
        assert not names[end].higher_is_better


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alpha": 0}, r"task.evaluation.alpha=0 must be a number in \(0, 1\)"),
        ({"alpha": 1.2}, r"alpha=1.2 must be"),
        ({"alpha": "low"}, r"alpha='low' must be"),
        ({"alpha": True}, r"alpha=True must be"),
        ({"calibration_normals": 0}, "needs a count >= 1 or a share"),
        ({"calibration_normals": 1.5}, r"a share must be in \(0, 1\)"),
        ({"calibration_normals": 10}, "hold out at least 19 normal cars, or raise alpha to 0.0909"),
        ({"calibration_normals": 5, "alpha": 0.1}, "at least 9 normal cars"),
    ],
)
def test_a_bad_setting_is_one_config_error_that_says_what_to_fix(settings, message):
    with pytest.raises(ConfigError, match=message) as info:
        VehicleProtocol(**settings)
    assert "\n" not in str(info.value)


def test_counts_that_reach_alpha_and_other_rules_pass():
    VehicleProtocol(calibration_normals=19)
    VehicleProtocol(calibration_normals=9, alpha=0.1)
    VehicleProtocol(threshold_rule="normal_max", calibration_normals=0)  # unused: not checked
