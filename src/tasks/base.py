"""What every task family returns from evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class EvalResult:
    """Metrics named ``area/name`` (e.g. ``test/auroc``) and tables saved as CSV artifacts."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
