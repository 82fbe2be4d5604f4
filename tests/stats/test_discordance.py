"""Changed pairs and McNemar: ``pytest tests/stats/test_discordance.py``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from src.stats import PairedCell, discordance, mcnemar_exact, paired_difference


def _cell(rng, ids, n_pos=10, n_neg=12, tau=0.4):
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    base = 1.7 * y + rng.normal(0, 1, y.size)
    variant = np.round(base + rng.normal(0, tau, y.size), 1)  # rounding makes ties too
    return PairedCell(ids, y, np.round(base, 1), variant)


def test_one_cell_difference_is_better_minus_worse_over_all_pairs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        cell = _cell(rng, np.arange(22))
        changed = discordance([cell], "auroc")
        truth = roc_auc_score(cell.labels, cell.variant) - roc_auc_score(cell.labels, cell.baseline)
        assert changed.total == 120 and changed.n_cells == 1
        assert (changed.better - changed.worse) / changed.total == pytest.approx(truth, abs=1e-12)
        estimate = paired_difference([cell], "auroc", margin=0.02)
        assert estimate.difference == pytest.approx(truth, abs=1e-12)
        assert changed.rate >= abs(truth) - 1e-12


def test_several_cells_recombine_as_the_mean_of_their_own_identities():
    rng = np.random.default_rng(1)
    cells = [_cell(rng, np.r_[np.arange(10), 100 * (k + 1) + np.arange(12)]) for k in range(3)]
    own = [discordance([c], "auroc") for c in cells]
    mean = np.mean([(d.better - d.worse) / d.total for d in own])
    estimate = paired_difference(cells, "auroc", n_boot=50)
    assert estimate.difference == pytest.approx(mean, abs=1e-12)
    summed = estimate.discordance
    assert summed.worse == sum(d.worse for d in own) and summed.total == 360
    assert summed.n_cells == 3 and summed.units_moved <= 10 + 36


def test_units_moved_counts_the_units_of_changed_pairs_once():
    y = np.r_[np.ones(3), np.zeros(3)].astype(int)
    base = np.array([5.0, 6.0, 7.0, 1.0, 2.0, 3.0])
    variant = base.copy()
    variant[0] = 2.5  # faulty unit 0 now scores below normal unit 5 (3.0): one pair
    changed = discordance([PairedCell(np.arange(6), y, base, variant)], "auroc")
    assert (changed.worse, changed.better, changed.units_moved) == (1.0, 0.0, 2)
    variant[0] = 3.0  # a tie with unit 5: half a pair
    changed = discordance([PairedCell(np.arange(6), y, base, variant)], "auroc")
    assert (changed.worse, changed.units_moved) == (0.5, 2) and not changed.identical
    same = discordance([PairedCell(np.arange(6), y, base, 2 * base + 1)], "auroc")
    assert same.identical and same.rate == 0  # a monotone rescaling reorders nothing


def test_accuracy_pairs_are_units_whose_correctness_changed():
    base = np.array([1, 1, 1, 0, 0, 1])
    variant = np.array([1, 0, 1, 1, 1, 1])
    changed = discordance([PairedCell(np.arange(6), np.zeros(6), base, variant)], "accuracy")
    assert (changed.worse, changed.better, changed.total, changed.units_moved) == (1, 2, 6, 3)


@pytest.mark.parametrize(("only_base", "only_variant", "both"), [(3, 9, 40), (0, 5, 10), (4, 4, 2)])
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_cases(only_base, only_variant, both):
    base = np.r_[np.ones(only_base), np.zeros(only_variant), np.ones(both), np.zeros(7)]
    variant = np.r_[np.zeros(only_base), np.ones(only_variant), np.ones(both), np.zeros(7)]
    expected = binomtest(only_base, only_base + only_variant, 0.5).pvalue
    assert mcnemar_exact(base, variant) == pytest.approx(expected)
    assert mcnemar_exact(base, base) == 1.0
