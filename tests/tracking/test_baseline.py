"""Baseline lookup: ``python -m pytest tests/tracking/test_baseline.py``."""

import pytest

from src.errors import UserError
from src.tracking.baseline import check_baseline_run, find_baseline_run
from src.tracking.mlflow_run import tracked_run


def test_finds_the_newest_finished_baseline_with_the_same_key(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert find_baseline_run(uri, "exp", "k1") is None
    with tracked_run(uri, "exp", "b", {"method": "baseline", "baseline_key": "k1"}) as old:
        pass
    with tracked_run(uri, "exp", "b", {"method": "baseline", "baseline_key": "k1"}) as new:
        pass
    with pytest.raises(RuntimeError):
        with tracked_run(uri, "exp", "b", {"method": "baseline", "baseline_key": "k1"}):
            raise RuntimeError("crashed")  # a FAILED baseline is never reused
    with tracked_run(uri, "exp", "d", {"method": "dynamic", "baseline_key": "k1"}):
        pass
    assert find_baseline_run(uri, "exp", "k1") == new.run_id != old.run_id
    assert find_baseline_run(uri, "exp", "k2") is None
    assert check_baseline_run(uri, new.run_id) == new.run_id


def test_named_baseline_must_be_a_finished_baseline(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with tracked_run(uri, "exp", "d", {"method": "dynamic"}) as other:
        pass
    with pytest.raises(UserError, match="not a FINISHED baseline run"):
        check_baseline_run(uri, other.run_id)
    with pytest.raises(UserError, match="is not a run"):
        check_baseline_run(uri, "0" * 32)
