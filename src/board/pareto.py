"""Pareto front of leaderboard rows over several objectives."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

_SIGN = {"max": 1.0, "min": -1.0}


def pareto_front(frame: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """Which rows no other row dominates.

    A row is dominated when another row is at least as good in every objective and strictly
    better in one. Rows missing any objective are never on the front (nothing can be claimed
    about them), and do not dominate others.

    Args:
        frame: One row per candidate.
        objectives: ``{column: "max" | "min"}``.

    Returns:
        Boolean Series aligned with ``frame``.

    Example:
        >>> pareto_front(board, {"test/auroc:mean": "max", "latency/ms_p50_bs1:mean": "min"})
    """
    unknown = {d for d in objectives.values() if d not in _SIGN}
    if unknown:
        raise ValueError(f"objective directions must be 'max' or 'min', got {sorted(unknown)}")
    columns = [c for c in objectives if c in frame]
    if len(columns) < len(objectives) or frame.empty:
        return pd.Series(False, index=frame.index)
    signs = np.array([_SIGN[objectives[c]] for c in columns])
    values = frame[columns].to_numpy(dtype=float) * signs  # all objectives as "higher is better"
    complete = ~np.isnan(values).any(axis=1)
    front = complete.copy()
    for i in np.flatnonzero(complete):
        others = values[complete]
        dominated = (others >= values[i]).all(axis=1) & (others > values[i]).any(axis=1)
        front[i] = not dominated.any()
    return pd.Series(front, index=frame.index)
