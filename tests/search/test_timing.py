"""The search's batch timer: ``pytest tests/search/test_timing.py``."""

from types import SimpleNamespace

import pytest

from src.core.errors import UserError
from src.pipeline.timing import Target
from src.search import timing
from src.search.timing import BatchTimer, timing_spec


class Store:
    """Runs by id with their tags: the two trials share a baseline."""

    def __init__(self):
        self.tags = {"t1": {"baseline_run_id": "b"}, "t2": {"baseline_run_id": "b"}, "b": {}}

    def get(self, run_id):
        return SimpleNamespace(data=SimpleNamespace(tags=self.tags[run_id]))


def _timer(runtime="onnxruntime"):
    return BatchTimer(Store(), timing_spec({}, (1,), 0), runtime, "parent", "exp")


def test_a_batch_is_timed_with_its_baseline_once_in_eager_and_the_searchs_runtime():
    both = ("eager", "onnxruntime")
    assert _timer().targets(["t1", "t2"]) == [
        Target("t1", "b", both),
        Target("t2", "b", both),
        Target("b", "b", both),
    ]
    assert _timer("eager").targets(["b", "t1"]) == [
        Target("b", "b", ("eager",)),
        Target("t1", "b", ("eager",)),
    ]


def test_the_pass_settles_the_speed_and_a_refusal_leaves_the_in_run_figure(monkeypatch):
    table = SimpleNamespace(estimates=None)
    monkeypatch.setattr(timing, "time_targets", lambda *a: table)
    monkeypatch.setattr(timing, "run_metrics", lambda e: {"t1": {"timing/x": 1.0}})
    assert _timer()(["t1"]) == {"t1": {"timing/x": 1.0}}
    assert _timer()([]) == {}

    def refuse(*args):
        raise UserError("run t1 logged no timing/inputs.pt")

    monkeypatch.setattr(timing, "time_targets", refuse)
    assert _timer()(["t1"]) == {}


def test_settings_default_to_src_timings_but_three_processes():
    spec = timing_spec({"rounds": 2}, (1, 64), 7)
    assert (spec.processes, spec.seed, spec.latency.rounds) == (3, 7, 2)
    assert (spec.latency.threads, spec.latency.warmup, spec.latency.iters) == (2, 2, 10)
    assert spec.latency.batch_sizes == (1, 64)
    with pytest.raises(Exception, match="rounds"):
        timing_spec({"rounds": 0}, (1,), 0)
