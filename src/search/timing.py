"""The search's speed objective, from fresh processes.

A trial's own in-run speedup is one process's draw: the same recipe measured 1.18x in one trial
and 1.96x in another, so a front drawn from in-run figures ranks processes, not recipes. After
each batch, its finished trials and their fp32 baseline are timed together by the timing pass's
estimator (:func:`src.pipeline.timing_record.time_targets`: ``processes`` fresh interpreters,
``rounds`` random-order rounds each, a t interval over processes), and the ``timing/<runtime>/*``
figures it writes are what the trial is scored on, as the board and ``python -m src.timing`` read
them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from src.core import schema
from src.core.errors import ConfigError, UserError
from src.measure.latency import LatencySpec
from src.pipeline.timing import Target, TimingSpec
from src.pipeline.timing_record import run_metrics, time_targets
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
# src.timing's defaults (conf/timing.yaml) but three processes: a search times every batch
DEFAULTS = {"rounds": 6, "threads": 2, "warmup": 2, "iters": 10, "block_seconds": 0.25}
KEYS = ("processes", *DEFAULTS)


def timing_spec(values: dict, batch_sizes: tuple[int, ...], seed: int) -> TimingSpec:
    """``search.timing`` (:data:`KEYS`) as the pass's settings at ``batch_sizes``.

    Raises:
        ConfigError: An unknown key, or a value the pass refuses.
    """
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"search.timing: unknown keys {unknown}; its keys are {list(KEYS)}")
    given = {k: v for k, v in values.items() if k != "processes"}
    latency = LatencySpec(batch_sizes=batch_sizes, **{**DEFAULTS, **given})
    return TimingSpec(latency, values.get("processes", 3), seed)


def check_timing(values: dict) -> None:
    """Raise :class:`ConfigError` naming ``search.timing`` where the pass would refuse it."""
    try:
        timing_spec(values, (1,), 0)
    except ConfigError as err:
        raise ConfigError(f"search.timing: {err}") from None


@dataclass
class BatchTimer:
    """Times a batch of trial runs with their baselines; returns each run's ``timing/*``."""

    store: RunStore
    spec: TimingSpec
    runtime: str
    parent_run_id: str | None
    experiment: str

    def __call__(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        """``{run_id: {timing/<runtime>/speedup_bs1: ..., ...}}``; empty when the pass could
        not run (said in one warning line: the trials keep their in-run figures)."""
        if not run_ids:
            return {}
        try:
            targets = self.targets(run_ids)
            found = time_targets(
                self.store, targets, self.spec, self.experiment, self.parent_run_id
            )
        except UserError as err:
            log.warning("search: speed from the trials' own processes: %s", err)
            return {}
        return run_metrics(found.estimates)

    def targets(self, run_ids: list[str]) -> list[Target]:
        """Each trial in eager and the search's runtime, and each trial's baseline alike."""
        runtimes = tuple(dict.fromkeys((schema.EAGER, self.runtime)))
        out, baselines = [], []
        for run_id in run_ids:
            tags = self.store.get(run_id).data.tags
            baseline = tags.get(schema.BASELINE_RUN_ID, run_id)
            out.append(Target(run_id, baseline, runtimes))
            if baseline != run_id and baseline not in baselines:
                baselines.append(baseline)
        return [*out, *(Target(b, b, runtimes) for b in baselines if b not in run_ids)]
