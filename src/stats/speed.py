"""A speedup measured across fresh processes, with an interval that sees the process.

Everything a process draws once (address-space layout and alignment, allocator state, the
oneDNN / fbgemm primitive picked, thread placement, a co-tenant on a core, frequency) is one draw
of a random effect that no resampling of calls inside that process can see (Mytkowicz et al.,
ASPLOS 2009; Curtsinger & Berger, ASPLOS 2013; pyperf's worker processes). So the unit of
replication is the process: with ``l[p, r]`` the log ratio of the reference's to the candidate's
median time in round ``r`` of process ``p`` (both timed in that round),

- the estimate is ``exp(mean_p m_p)``, ``m_p = mean_r l[p, r]`` (a geometric mean of the
  per-process speedups);
- its interval is Student's t over the ``P`` per-process means (df ``P - 1``), exponentiated;
- the one-way random-effects split of ``l`` (:func:`src.stats.power.variance_components`) gives
  the between-process variance ``sigma_b2`` and the within-process one ``sigma_w2``, from which
  :func:`processes_for` sizes a pass: ``Var(m_p) = sigma_b2 + sigma_w2 / R``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from src.stats.delong import t_quantile
from src.stats.power import variance_components


@dataclass(frozen=True)
class SpeedupEstimate:
    """A speedup over processes (> 1: the candidate is faster).

    Attributes:
        speedup: ``exp`` of the mean over processes of the per-process mean log ratio.
        low: Lower end of the ``level`` interval (t over processes); NaN with one process.
        high: Upper end, likewise.
        processes: Processes that timed both models.
        rounds: Rounds per process (the most any process gave).
        sigma_b2: Between-process variance of the log ratio (method of moments, >= 0).
        sigma_w2: Within-process (round to round) variance of the log ratio.
        level: Two-sided coverage of the interval.
    """

    speedup: float
    low: float
    high: float
    processes: int
    rounds: int
    sigma_b2: float
    sigma_w2: float
    level: float = 0.95

    @property
    def sd_between(self) -> float:
        """Between-process standard deviation of the log speedup."""
        return math.sqrt(self.sigma_b2)

    def processes_for(self, half_width: float = 0.10, rounds: int | None = None) -> int:
        """Processes whose interval would reach ``exp(+-log(1 + half_width))``; see
        :func:`processes_for`."""
        return processes_for(
            self.sigma_b2, self.sigma_w2, rounds or self.rounds, half_width, self.level
        )


def speedup_over_processes(log_ratios: np.ndarray, level: float = 0.95) -> SpeedupEstimate:
    """:class:`SpeedupEstimate` of ``log_ratios``, shape ``(processes, rounds)`` (NaN where a
    round is missing: a process that died early still counts with the rounds it gave).

    Raises:
        ValueError: Not two-dimensional, or no process with a finite round.
    """
    logs = np.asarray(log_ratios, float)
    if logs.ndim != 2:
        raise ValueError(f"log_ratios must be (processes, rounds), got shape {logs.shape}")
    kept = [row[np.isfinite(row)] for row in logs]
    kept = [row for row in kept if row.size]
    if not kept:
        raise ValueError("no process timed both models: nothing to estimate")
    means = np.array([row.mean() for row in kept])
    centre, p = float(means.mean()), means.size
    if p > 1:
        half = float(t_quantile(0.5 + level / 2, p - 1) * means.std(ddof=1) / math.sqrt(p))
    else:
        half = math.nan
    groups = np.concatenate([np.full(row.size, i) for i, row in enumerate(kept)])
    s_b, s_w, _ = variance_components(np.concatenate(kept), groups)
    return SpeedupEstimate(
        speedup=math.exp(centre),
        low=math.exp(centre - half),
        high=math.exp(centre + half),
        processes=p,
        rounds=max(row.size for row in kept),
        sigma_b2=float(s_b),
        sigma_w2=float(s_w),
        level=level,
    )


def processes_for(
    sigma_b2: float, sigma_w2: float, rounds: int, half_width: float = 0.10, level: float = 0.95
) -> int:
    """Fewest processes (>= 2) whose expected t interval of the speedup lies within
    ``[1 / (1 + half_width), 1 + half_width]`` times the estimate, ``rounds`` rounds each.

    Returns:
        The count; 2 when even two would do.
    """
    var_mean = sigma_b2 + sigma_w2 / max(1, rounds)  # variance of one process's mean
    target = math.log1p(half_width)
    p = 2
    while t_quantile(0.5 + level / 2, p - 1) * math.sqrt(var_mean / p) > target and p < 10_000:
        p += 1
    return p
