"""Units behind paired cells: ``pytest tests/stats/test_cells.py``."""

from __future__ import annotations

import numpy as np
import pytest

from src.stats import PairedCell, paired_difference
from src.stats.cells import units_of


def test_units_are_shared_by_id_across_cells():
    a = PairedCell(np.array(["v1", "v2", "v3"]), np.array([1, 0, 0]), np.zeros(3), np.zeros(3))
    b = PairedCell(np.array(["v3", "v4"]), np.array([0, 1]), np.zeros(2), np.zeros(2))
    units, labels, index = units_of([a, b])
    assert list(units) == ["v1", "v2", "v3", "v4"] and list(labels) == [1, 0, 0, 1]
    assert [list(i) for i in index] == [[0, 1, 2], [2, 3]]


def test_a_unit_with_two_labels_is_refused_by_name():
    a = PairedCell(np.array(["v1", "v2", "v3"]), np.array([1, 0, 0]), np.arange(3.0), np.ones(3))
    b = PairedCell(np.array(["v3", "v4"]), np.array([1, 0]), np.arange(2.0), np.ones(2))
    with pytest.raises(ValueError, match=r"unit 'v3' has labels \[0, 1\]"):
        units_of([a, b])
    with pytest.raises(ValueError, match="unit 'v3'"):
        paired_difference([a, b], "auroc")
