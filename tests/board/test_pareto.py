"""Pareto front: ``python -m pytest tests/board/test_pareto.py``."""

import numpy as np
import pandas as pd
import pytest

from src.board.pareto import pareto_front

OBJECTIVES = {"acc": "max", "ms": "min", "mb": "min"}


def test_hand_built_front():
    frame = pd.DataFrame(
        {
            "acc": [0.90, 0.88, 0.80, 0.87, 0.90, 0.95],
            "ms": [2.0, 1.0, 0.5, 1.2, 2.0, np.nan],
            "mb": [1.0, 0.3, 0.25, 0.5, 1.0, 0.1],
        },
        index=list("abcdef"),
    )
    front = pareto_front(frame, OBJECTIVES)
    # d is dominated by b; a and e tie (neither dominates the other); f misses latency.
    assert front.to_dict() == dict(a=True, b=True, c=True, d=False, e=True, f=False)


def test_direction_and_single_objective():
    frame = pd.DataFrame({"loss": [0.3, 0.1, 0.2]})
    assert list(pareto_front(frame, {"loss": "min"})) == [False, True, False]
    assert list(pareto_front(frame, {"loss": "max"})) == [True, False, False]


def test_missing_column_or_bad_direction():
    frame = pd.DataFrame({"acc": [0.9, 0.8]})
    assert not pareto_front(frame, OBJECTIVES).any()
    with pytest.raises(ValueError, match="'max' or 'min'"):
        pareto_front(frame, {"acc": "up"})
