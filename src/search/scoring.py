"""What a search reads from its trials' runs: objectives, goals, verdicts, the Pareto front and
its hypervolume. Every figure comes from a trial run's own logged metrics.

Objectives (each trial against its own fp32 baseline, measured side by side in its run):
- ``task``: the change of the task's primary metric on the split the search selects on
  (``tuning`` by default: the tuning vehicles, so the test split only judges), maximised;
- ``speedup``: the speedup at batch 1 in the search's runtime, maximised: from fresh processes
  (``timing/<runtime>/speedup_bs1``, :mod:`src.search.timing`) where the batch was timed so,
  else the trial's in-run figure (``latency/speedup_bs1`` in eager, ``latency/<runtime>/...``
  otherwise; one process's draw, labelled so);
- ``size``: the model file's size ratio to the baseline's (``size/ratio``), minimised.

Goals, Olive style: ``max_<metric>_drop`` (the drop of the selected split's metric, and a
``non-inferior`` paired verdict on the test units at that margin), ``min_speedup_bs1``,
``min_speedup_bsN``, ``max_size_ratio``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from src.board import columns as col
from src.board.pareto import pareto_front
from src.board.speed import IN_RUN, PASS
from src.board.verdict import SHOWN_NON_INFERIOR, verdict_of
from src.core import schema
from src.core.errors import ConfigError

DIRECTIONS = {"task": "max", "speedup": "max", "size": "min"}
_DROP = re.compile(r"^max_(?P<metric>\w+)_drop$")
_BOUNDS = {
    "min_speedup_bs1": "speedup_bs1",
    "min_speedup_bsN": "speedup_bsN",
    "max_size_ratio": "size",
}


@dataclass(frozen=True)
class Goals:
    """What a candidate must reach to stop the search; None: no such goal.

    Attributes:
        max_drop: The primary metric may drop at most this much (selected split), and the
            paired test interval must show it non-inferior at this margin.
        min_speedup_bs1: Speedup at batch 1 in the search's runtime at least this.
        min_speedup_bsN: Speedup at the largest batch at least this.
        max_size_ratio: File size at most this fraction of the baseline's.
    """

    max_drop: float | None = None
    min_speedup_bs1: float | None = None
    min_speedup_bsN: float | None = None
    max_size_ratio: float | None = None

    @classmethod
    def parse(cls, values: dict | None, primary: str) -> Goals:
        """``{max_auroc_drop: 0.01, min_speedup_bs1: 4}`` for a task whose primary metric is
        ``test/auroc``.

        Raises:
            ConfigError: A goal this search does not know, or for another metric.
        """
        name, found = primary.split("/", 1)[-1], {}
        for key, value in (values or {}).items():
            drop = _DROP.match(key)
            if drop and drop["metric"] == name:
                found["max_drop"] = float(value)
            elif key in _BOUNDS:
                found[key] = float(value)
            else:
                known = [f"max_{name}_drop", *_BOUNDS]
                raise ConfigError(f"search.goals.{key} is not a goal of this task; use {known}")
        return cls(**found)

    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())


@dataclass(frozen=True)
class Scoring:
    """How trials are read: the task's metrics, the split that selects, the runtime timed.

    Attributes:
        primary: The task's primary metric (``test/auroc``).
        select_on: ``tuning`` or ``test``: the split whose change is the ``task`` objective.
        runtime: The runtime whose speedup is the ``speedup`` objective.
        margin: The task's non-inferiority margin (used when no ``max_drop`` goal is set).
        higher_is_better: The primary metric's direction.
        goals: The goals.
    """

    primary: str
    select_on: str = "tuning"
    runtime: str = "eager"
    margin: float | None = None
    higher_is_better: bool = True
    goals: Goals = field(default_factory=Goals)

    def __post_init__(self) -> None:
        if self.select_on not in ("tuning", "test"):
            raise ConfigError(f"search.select_on={self.select_on!r}; choose tuning or test")

    def speedup_key(self, batch: str = "bs1") -> str:
        """The in-run speedup's metric (one process)."""
        base = schema.SPEEDUP if self.runtime == "eager" else schema.runtime_speedup(self.runtime)
        return f"{base}_{batch}"

    def pass_key(self, batch: str = "bs1") -> str:
        """The timing pass's speedup metric (fresh processes)."""
        return schema.timing_metric(self.runtime, f"speedup_{batch}")

    def speedup(self, metrics: dict, batch: str = "bs1") -> float:
        """The pass's speedup where the trial was timed so, else its in-run one."""
        found = metrics.get(self.pass_key(batch), np.nan)
        return found if np.isfinite(found) else metrics.get(self.speedup_key(batch), np.nan)

    def speed_from(self, metrics: dict) -> str:
        """How the ``speedup`` objective was measured, in words."""
        return PASS if np.isfinite(metrics.get(self.pass_key(), np.nan)) else IN_RUN

    def objectives(self, metrics: dict) -> dict[str, float]:
        """The trial's objective values (NaN where its run did not log one)."""
        name = self.primary.split("/", 1)[1]
        own = metrics.get(f"{self.select_on}/{name}", np.nan)
        base = metrics.get(f"{schema.REFERENCE}{self.select_on}/{name}", np.nan)
        sign = 1.0 if self.higher_is_better else -1.0
        return {
            "task": sign * (own - base),
            "speedup": self.speedup(metrics),
            "size": metrics.get(schema.SIZE_RATIO, np.nan),
        }

    def verdict(self, metrics: dict) -> str:
        """The trial's paired verdict on the test units at the goal's margin (or the task's)."""
        delta = schema.delta_of(self.primary)
        low, high = (metrics.get(name, np.nan) for name in schema.interval(delta))
        row = {col.METHOD: "trial", col.DELTA_CI_LOW: low, col.DELTA_CI_HIGH: high}
        margin = self.goals.max_drop if self.goals.max_drop is not None else self.margin
        return verdict_of(row, margin, self.higher_is_better)

    def unmet(self, metrics: dict) -> list[str]:
        """The goals this trial misses, in words (empty: it meets them all)."""
        values, goals, missed = self.objectives(metrics), self.goals, []
        if goals.max_drop is not None:
            if not values["task"] >= -goals.max_drop:
                missed.append(f"{self.select_on} drop {-values['task']:.3g} > {goals.max_drop:g}")
            if self.verdict(metrics) not in SHOWN_NON_INFERIOR:
                missed.append(f"test verdict {self.verdict(metrics)} at margin {goals.max_drop:g}")
        for goal, bound in (
            (goals.min_speedup_bs1, values["speedup"]),
            (goals.min_speedup_bsN, self.speedup(metrics, "bsN")),
        ):
            if goal is not None and not bound >= goal:
                missed.append(f"speedup {bound:.3g} < {goal:g}")
        if goals.max_size_ratio is not None and not values["size"] <= goals.max_size_ratio:
            missed.append(f"size ratio {values['size']:.3g} > {goals.max_size_ratio:g}")
        return missed


def front_of(trials: pd.DataFrame) -> pd.Series:
    """Which finished trials no other trial dominates on the objectives."""
    return pareto_front(trials, DIRECTIONS)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by ``points`` (to be minimised in every column) up to ``reference``
    (exact, by slicing along the last objective; fine for the tens of trials a search runs)."""
    points = np.asarray(points, dtype=float)
    points = points[np.all(points < reference, axis=1)] if len(points) else points
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    order = np.argsort(points[:, -1])
    points, volume = points[order], 0.0
    for i, point in enumerate(points):
        upper = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        if upper > point[-1]:
            volume += hypervolume(points[: i + 1, :-1], reference[:-1]) * (upper - point[-1])
    return volume


def as_minimised(trials: pd.DataFrame) -> np.ndarray:
    """The objective columns with every one turned into "lower is better"."""
    signs = np.array([-1.0 if DIRECTIONS[c] == "max" else 1.0 for c in DIRECTIONS])
    return trials[list(DIRECTIONS)].to_numpy(dtype=float) * signs
