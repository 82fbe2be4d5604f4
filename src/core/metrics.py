"""What a metric is, beyond its name: its direction, how to print it, whether it headlines.

Tasks declare their metrics as :class:`MetricSpec` objects; runs carry them as a JSON tag so a
report (the leaderboard) knows how to rank and show a metric without importing the task.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class MetricSpec:
    """A metric's meaning.

    Attributes:
        name: Logged name, ``area/name`` (``test/auroc``).
        higher_is_better: Its direction (ranking, Pareto fronts, verdicts).
        fmt: Format spec for one value (``.3f``).
        headline: Shown on the board beside the ranking metric.
        paired: How a variant's paired difference from its baseline is recombined over folds
            and seeds from the runs' per-unit tables (``auroc``, ``accuracy``; None: not).
        margin: Non-inferiority margin of the paired difference (0.02 AUROC): a variant whose
            whole interval of loss stays within it is non-inferior.

    Class attributes:
        PARITY_FALLBACK: :attr:`parity_margin` of a metric declared without a margin.
    """

    name: str
    higher_is_better: bool = True
    fmt: str = ".3f"
    headline: bool = False
    paired: str | None = None
    margin: float | None = None
    PARITY_FALLBACK: ClassVar[float] = 0.01

    @property
    def parity_margin(self) -> float:
        """The largest change of this metric that still counts as the same model (a deployment
        runtime's parity with eager): the non-inferiority margin, a change the verdicts would
        call a difference, else :attr:`PARITY_FALLBACK`."""
        return float(self.margin) if self.margin is not None else self.PARITY_FALLBACK

    @property
    def direction(self) -> str:
        """``max`` or ``min``, as Pareto objectives take it."""
        return "max" if self.higher_is_better else "min"


def specs_to_json(specs: Iterable[MetricSpec]) -> str:
    """Compact JSON list, the value of a run's ``metric_specs`` tag."""
    return json.dumps([asdict(s) for s in specs], separators=(",", ":"))


def specs_from_json(text: str) -> list[MetricSpec]:
    """Inverse of :func:`specs_to_json`; an empty or malformed tag gives no specs."""
    try:
        values = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [MetricSpec(**v) for v in values if isinstance(v, dict) and "name" in v]


def measured_direction(name: str) -> bool | None:
    """``higher_is_better`` of a measurement metric by its area, None when it has no direction
    (``latency/ms_*`` and ``size/*`` lower, speedups and throughput higher)."""
    if name.startswith(("latency/ms_", "size/")):
        return False
    if name.startswith(("latency/speedup", "throughput/", "quant/int8")):
        return True
    return None
