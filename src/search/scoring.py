"""What a search reads from its trials' runs: objectives, goals, the Pareto front and its
hypervolume, and the one confirmatory verdict. Every figure comes from a trial run's own metrics.

Selection never reads the test split (``select_on: tuning``, the default). The objectives, the
goals that stop the search and the choice read figures of the tuning split and label-free
figures only; the chosen trial's test verdict is computed once, after the search, from its
paired table (:meth:`Scoring.confirm`): a confirmatory look at one-sided ``alpha``. A search that
selects on test (``select_on: test``) judges each of the ``k`` trials it looked at at ``alpha/k``
and says it was "selected on test among k trials".

Objectives (each trial against its own fp32 baseline):
- ``fidelity``: the task's label-free distance from the baseline's answers on the tuning split
  (:data:`src.core.schema.TUNING_SHIFT`: the median shift of a tuning vehicle's log score
  against its model's median; the mean KL of the validation images' outputs), minimised. The
  baseline against itself scores 0; it moves where the tuning AUROC is stuck at 1.0;
- ``speedup``: the speedup at batch 1 in the search's runtime, maximised: from fresh processes
  (``timing/<runtime>/speedup_bs1``, :mod:`src.search.timing`) where the batch was timed so,
  else the trial's in-run figure (one process's draw, labelled so);
- ``size``: the model file's size ratio to the baseline's (``size/ratio``), minimised.

Goals, Olive style: ``max_<metric>_drop`` (on tuning: the drop of the tuning split's smooth
separation, :data:`src.core.schema.TUNING_SEPARATION`, which is on the metric's scale and does
not saturate; on test: the test drop and a non-inferior verdict at ``alpha/k``),
``min_speedup_bs1`` and ``min_speedup_bsN`` (judged on the interval's lower bound),
``max_size_ratio``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtri

from src.board import columns as col
from src.board.pareto import pareto_front
from src.board.speed import IN_RUN, PASS
from src.board.verdict import ALPHA, SHOWN_NON_INFERIOR, judge_table, verdict_of
from src.core import schema
from src.core.errors import ConfigError

DIRECTIONS = {"fidelity": "min", "speedup": "max", "size": "min"}
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
        max_drop: The primary metric may drop at most this much: on tuning, its smooth
            separation; on test, the metric and the lower end of its paired interval at
            ``alpha / k`` (non-inferior at this margin).
        min_speedup_bs1: The lower end of the batch-1 speedup's interval at least this.
        min_speedup_bsN: The same at the largest batch.
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
        select_on: ``tuning`` (the default: nothing reads the test split before the
            confirmatory look) or ``test``.
        runtime: The runtime whose speedup is the ``speedup`` objective.
        margin: The task's non-inferiority margin (used when no ``max_drop`` goal is set).
        higher_is_better: The primary metric's direction.
        goals: The goals.
        paired: The primary metric's paired statistic (``auroc``, ``accuracy``): what the
            confirmatory verdict recomputes from a trial's paired table.
        alpha: One-sided error rate of each bound of a verdict.
    """

    primary: str
    select_on: str = "tuning"
    runtime: str = "eager"
    margin: float | None = None
    higher_is_better: bool = True
    goals: Goals = field(default_factory=Goals)
    paired: str | None = None
    alpha: float = ALPHA

    def __post_init__(self) -> None:
        if self.select_on not in ("tuning", "test"):
            raise ConfigError(f"search.select_on={self.select_on!r}; choose tuning or test")

    @property
    def on_test(self) -> bool:
        return self.select_on == "test"

    @property
    def verdict_margin(self) -> float | None:
        return self.goals.max_drop if self.goals.max_drop is not None else self.margin

    def speedup_key(self, batch: str = "bs1") -> str:
        """The in-run speedup's metric (one process)."""
        base = schema.SPEEDUP if self.runtime == "eager" else schema.runtime_speedup(self.runtime)
        return f"{base}_{batch}"

    def pass_key(self, batch: str = "bs1") -> str:
        """The timing pass's speedup metric (fresh processes)."""
        return schema.timing_metric(self.runtime, f"speedup_{batch}")

    def _speed_key(self, metrics: dict, batch: str) -> str:
        """The pass's metric where the trial was timed so, else the in-run one."""
        found = metrics.get(self.pass_key(batch), np.nan)
        return self.pass_key(batch) if np.isfinite(found) else self.speedup_key(batch)

    def speedup(self, metrics: dict, batch: str = "bs1") -> float:
        """The pass's speedup where the trial was timed so, else its in-run one."""
        return metrics.get(self._speed_key(metrics, batch), np.nan)

    def speedup_low(self, metrics: dict, batch: str = "bs1") -> float:
        """The lower end of that speedup's interval (NaN where it has none)."""
        return metrics.get(schema.interval(self._speed_key(metrics, batch))[0], np.nan)

    def speed_from(self, metrics: dict) -> str:
        """How the ``speedup`` objective was measured, in words."""
        return PASS if np.isfinite(metrics.get(self.pass_key(), np.nan)) else IN_RUN

    def objectives(self, metrics: dict) -> dict[str, float]:
        """The trial's objective values (NaN where its run did not log one)."""
        return {
            "fidelity": metrics.get(schema.TUNING_SHIFT, np.nan),
            "speedup": self.speedup(metrics),
            "size": metrics.get(schema.SIZE_RATIO, np.nan),
        }

    def change(self, metrics: dict) -> float:
        """What the accuracy goal reads, signed so that a loss is negative: the tuning split's
        separation change (``select_on: tuning``), or the primary metric's test change."""
        if self.on_test:
            return (1.0 if self.higher_is_better else -1.0) * _moved(metrics, self.primary)
        return _moved(metrics, schema.TUNING_SEPARATION)

    def tuning_figures(self, metrics: dict) -> dict[str, float]:
        """Everything a trial logged of the tuning split, beside the objectives."""
        return {
            "separation_change": _moved(metrics, schema.TUNING_SEPARATION),
            "tuning_loss": metrics.get(schema.TUNING_LOSS, np.nan),
            "rank_change": metrics.get(schema.TUNING_RANK_CHANGE, np.nan),
        }

    def test_verdict(self, metrics: dict, k: int) -> str:
        """``select_on: test`` only: the trial's verdict from its logged paired interval, the
        bound moved to ``alpha / k`` by the DeLong / Wald standard error the interval implies
        (a normal approximation of the logged t interval; the report recomputes the chosen
        trial's exactly from its paired table)."""
        if not self.on_test:
            raise RuntimeError("a search that selects on tuning reads no test verdict")
        delta = schema.delta_of(self.primary)
        low, high = (metrics.get(name, np.nan) for name in schema.interval(delta))
        return _verdict_at(low, high, self.verdict_margin, self.higher_is_better, self.alpha, k)

    def accuracy_unmet(self, metrics: dict, k: int = 1) -> list[str]:
        """The accuracy goal's misses alone (see :meth:`unmet`)."""
        goals, missed = self.goals, []
        if goals.max_drop is None:
            return missed
        change = self.change(metrics)
        what = "test" if self.on_test else "tuning separation"
        if not change >= -goals.max_drop:
            missed.append(f"{what} drop {-change:.3g} > {goals.max_drop:g}")
        verdict = self.test_verdict(metrics, k) if self.on_test else None
        if verdict is not None and verdict not in SHOWN_NON_INFERIOR:
            missed.append(f"test verdict at alpha/{k}: {verdict}")
        return missed

    def unmet(self, metrics: dict, k: int = 1) -> list[str]:
        """The goals this trial misses, in words (empty: it meets them all); ``k``: trials
        looked at so far (a test-based goal is judged at ``alpha / k``)."""
        goals, missed = self.goals, self.accuracy_unmet(metrics, k)
        for goal, batch in ((goals.min_speedup_bs1, "bs1"), (goals.min_speedup_bsN, "bsN")):
            low = self.speedup_low(metrics, batch)
            if goal is not None and not low >= goal:
                missed.append(f"speedup {batch} lower bound {low:.3g} < {goal:g}")
        size = metrics.get(schema.SIZE_RATIO, np.nan)
        if goals.max_size_ratio is not None and not size <= goals.max_size_ratio:
            missed.append(f"size ratio {size:.3g} > {goals.max_size_ratio:g}")
        return missed

    def confirm(self, table: pd.DataFrame | None, k: int = 1) -> dict:
        """The chosen trial's test verdict from its paired table, each bound a one-sided
        ``alpha / k`` test (``k`` = 1 after a search that never read the test split)."""
        margin = self.verdict_margin
        if table is None or self.paired is None or margin is None:
            return {"verdict": "no paired table", "alpha": self.alpha / k, "k": k}
        verdict, est = judge_table(
            table, self.paired, margin, self.higher_is_better, alpha=self.alpha / k
        )
        return {
            "verdict": verdict,
            "difference": est.difference,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "interval": est.method,
            "alpha": self.alpha / k,
            "k": k,
            "margin": margin,
            "units": est.n_units,
        }


def _moved(metrics: dict, name: str) -> float:
    """Metric ``name`` of the trial minus its baseline's (``baseline/<name>``)."""
    return metrics.get(name, np.nan) - metrics.get(f"{schema.REFERENCE}{name}", np.nan)


def _verdict_at(low, high, margin, higher_is_better, alpha, k) -> str:
    """The verdict of a logged two-sided ``1 - 2 alpha`` interval moved to ``alpha / k``."""
    if margin is None or not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    centre, half = (low + high) / 2, (high - low) / 2
    wider = half * ndtri(1 - alpha / k) / ndtri(1 - alpha)  # the normal quantile ratio
    row = {col.METHOD: "trial", col.DELTA_CI_LOW: centre - wider, col.DELTA_CI_HIGH: centre + wider}
    return verdict_of(row, margin, higher_is_better)


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
