"""Holm within each baseline's family: ``pytest tests/board/test_family.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.board.family import holm_column, judged_counts

CLAIMS = ("superior", "non-inferior", "non-inferior but worse")


def _rows(p_values, verdicts, models=None):
    n = len(p_values)
    return pd.DataFrame(
        {
            "data": "battery",
            "data_variant": "",
            "data_fingerprint": "f",
            "model": models or ["dyad"] * n,
            "context": "",
            "method": ["baseline" if v == "baseline" else "m" for v in verdicts],
            "delta:ci_low": [np.nan if v == "baseline" else -0.01 for v in verdicts],
            "p_ni": p_values,
            "verdict": verdicts,
        }
    )


def test_holm_steps_down_and_takes_back_what_the_family_cannot_carry():
    # k = 3: the smallest p is tested at 0.025/3, the next at 0.025/2, the last at 0.025.
    rows = _rows(
        [np.nan, 0.005, 0.02, 0.024], ["baseline", "non-inferior", "superior", "non-inferior"]
    )
    assert judged_counts(rows).tolist() == [3, 3, 3, 3]
    assert holm_column(rows, 0.025, CLAIMS, "inconclusive") == [
        "baseline",
        "non-inferior",
        "inconclusive",  # 0.02 > 0.0125: the step-down stops here
        "inconclusive",
    ]


def test_one_variant_is_the_unadjusted_test_and_families_stay_apart():
    rows = _rows(
        [np.nan, 0.02, 0.3, 0.02],
        ["baseline", "non-inferior", "inconclusive", "non-inferior"],
        models=["dyad", "dyad", "dyad", "other"],
    )
    assert judged_counts(rows).tolist() == [2, 2, 2, 1]
    assert holm_column(rows, 0.025, CLAIMS, "inconclusive") == [
        "baseline",
        "inconclusive",  # k = 2 on dyad: 0.02 > 0.0125
        "inconclusive",
        "non-inferior",  # alone on its baseline: the unadjusted test at 0.025
    ]


def test_what_is_not_a_claim_is_copied_and_a_missing_p_is_never_a_claim():
    rows = _rows(
        [np.nan, np.nan, 0.5, 0.001],
        ["baseline", "non-inferior", "inferior", "identical on 22 units"],
    )
    assert holm_column(rows, 0.025, CLAIMS, "inconclusive") == [
        "baseline",
        "inconclusive",
        "inferior",
        "identical on 22 units",
    ]
