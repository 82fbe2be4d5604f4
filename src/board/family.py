"""The family of variants judged against one baseline: how many, and their verdicts once the
claims of non-inferiority are adjusted for being made together.

Each verdict is a one-sided test at 2.5 %; with k variants on one baseline, each exactly at the
margin, the chance that at least one is called non-inferior grows to 1 - 0.975^k (0.14 at 6,
0.26 at 12). Holm's step-down on the variants' non-inferiority p-values keeps that family-wise
error at 2.5 % under any dependence between them (they share the baseline and the test units).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from src.board import columns as col
from src.core import schema
from src.stats import holm


def _judged(rows: pd.DataFrame) -> pd.Series:
    """Rows that were tested: not a baseline, and with an interval."""
    finite = np.isfinite(rows[col.DELTA_CI_LOW].astype(float))
    return (rows[col.METHOD] != schema.BASELINE) & finite


def judged_counts(rows: pd.DataFrame) -> pd.Series:
    """Per row, the number of variants judged against the same baseline (its family's k)."""
    judged = _judged(rows)
    keys = [rows[c].astype(str) for c in col.GROUP if c in rows]
    return judged.groupby(keys).transform("sum").astype(int)


def holm_column(
    rows: pd.DataFrame, alpha: float, claims: Collection[str], fallback: str
) -> list[str]:
    """The verdicts after Holm's adjustment within each baseline's family: a row whose verdict
    is one of ``claims`` (a non-inferiority claim) keeps it only when Holm rejects its null
    ("worse by the margin or more") among the family's p-values (``p_ni``); else ``fallback``.
    Every other verdict is copied."""
    out = rows[col.VERDICT].astype(str).copy()
    judged = _judged(rows)
    keys = [rows[c].astype(str) for c in col.GROUP if c in rows]
    for _, group in rows[judged].groupby(keys):
        p = group[col.P_NI].astype(float).to_numpy()
        kept = holm(p, alpha)
        lost = group.index[~kept & group[col.VERDICT].isin(list(claims)).to_numpy()]
        out.loc[lost] = fallback
    return out.tolist()
