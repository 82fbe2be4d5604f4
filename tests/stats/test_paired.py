"""Paired statistics against independent computations: ``pytest tests/stats/test_paired.py``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from sklearn.metrics import roc_auc_score

from src.stats import PairedCell, delong_paired, mcnemar_exact, paired_difference


def _naive_delong(y, a, b):
    """DeLong et al. (1988) written out with loops: structural components, their covariance."""
    pos, neg = [i for i in range(len(y)) if y[i]], [i for i in range(len(y)) if not y[i]]

    def psi(x, z):
        return 1.0 if x > z else 0.5 if x == z else 0.0

    comps = {}
    for name, s in (("a", a), ("b", b)):
        comps[name] = (
            [sum(psi(s[i], s[j]) for j in neg) / len(neg) for i in pos],
            [sum(psi(s[i], s[j]) for i in pos) / len(pos) for j in neg],
        )

    def cov(u, v):
        return sum((x - np.mean(u)) * (z - np.mean(v)) for x, z in zip(u, v, strict=True)) / (
            len(u) - 1
        )

    var = 0.0
    for k, size in ((0, len(pos)), (1, len(neg))):
        ua, ub = comps["a"][k], comps["b"][k]
        var += (cov(ua, ua) + cov(ub, ub) - 2 * cov(ua, ub)) / size
    return np.mean(comps["b"][0]) - np.mean(comps["a"][0]), np.sqrt(var)


def test_delong_matches_a_loop_implementation_and_sklearn():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(9), np.zeros(14)].astype(int)
    a = y + rng.normal(0, 1.0, y.size)
    b = 0.7 * a + rng.normal(0, 0.8, y.size)
    b[3] = b[20]  # a tie across classes
    result = delong_paired(y, a, b)
    diff, se = _naive_delong(y, a, b)
    assert result.auroc_baseline == pytest.approx(roc_auc_score(y, a))
    assert result.auroc_variant == pytest.approx(roc_auc_score(y, b))
    assert result.difference == pytest.approx(diff) and result.se == pytest.approx(se)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(diff) / se))
    assert result.ci_low == pytest.approx(diff - 1.959963984540054 * se)


def test_identical_models_do_not_differ():
    y = np.r_[np.ones(5), np.zeros(5)]
    s = np.arange(10.0)
    result = delong_paired(y, s, s)
    assert (result.difference, result.se, result.p_value) == (0.0, 0.0, 1.0)
    cell = PairedCell(np.arange(10), y, s, s)
    estimate = paired_difference([cell], "auroc", n_boot=200)
    assert (estimate.difference, estimate.ci_low, estimate.ci_high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("only_base", "only_variant", "both"), [(3, 9, 40), (0, 5, 10), (4, 4, 2)])
def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_cases(only_base, only_variant, both):
    base = np.r_[np.ones(only_base), np.zeros(only_variant), np.ones(both), np.zeros(7)]
    variant = np.r_[np.zeros(only_base), np.ones(only_variant), np.ones(both), np.zeros(7)]
    expected = binomtest(only_base, only_base + only_variant, 0.5).pvalue
    assert mcnemar_exact(base, variant) == pytest.approx(expected)
    assert mcnemar_exact(base, base) == 1.0


def test_paired_difference_is_the_mean_of_the_cells_differences():
    rng = np.random.default_rng(1)
    cells, diffs = [], []
    for fold in range(3):
        ids = np.array([f"car{fold}-{i}" for i in range(30)])
        y = (np.arange(30) < 10).astype(int)
        base = y + rng.normal(0, 1, 30)
        variant = base + rng.normal(0, 0.5, 30)
        cells.append(PairedCell(ids, y, base, variant))
        diffs.append(roc_auc_score(y, variant) - roc_auc_score(y, base))
    estimate = paired_difference(cells, "auroc", n_boot=500)
    assert estimate.difference == pytest.approx(np.mean(diffs))
    assert estimate.ci_low < estimate.difference < estimate.ci_high
    assert (estimate.n_cells, estimate.n_units) == (3, 90) and "stratified" in estimate.resampled


def test_a_unit_shared_by_cells_is_resampled_once_not_once_per_cell():
    """Two folds with the very same test vehicles carry no more evidence than one: joint
    resampling gives the same interval; resampling each fold on its own would narrow it."""
    rng = np.random.default_rng(2)
    ids, y = np.arange(40), (np.arange(40) < 15).astype(int)
    base = y + rng.normal(0, 1, 40)
    cell = PairedCell(ids, y, base, base + rng.normal(0, 0.7, 40))
    one = paired_difference([cell], "auroc", n_boot=1000, seed=5)
    two = paired_difference([cell, cell], "auroc", n_boot=1000, seed=5)
    assert (two.ci_low, two.ci_high) == pytest.approx((one.ci_low, one.ci_high))
    apart = PairedCell(ids + 100, y, cell.baseline, cell.variant)  # other vehicles, same scores
    wider = paired_difference([cell, apart], "auroc", n_boot=1000, seed=5)
    assert wider.ci_high - wider.ci_low < one.ci_high - one.ci_low


def test_a_worse_variant_gets_an_interval_below_zero():
    rng = np.random.default_rng(3)
    y = (np.arange(60) < 20).astype(int)
    base = 2.0 * y + rng.normal(0, 1, 60)
    shuffled = rng.permutation(base)  # the variant's scores no longer follow the labels
    estimate = paired_difference([PairedCell(np.arange(60), y, base, shuffled)], "auroc")
    assert estimate.ci_high < 0
    correct = (rng.random(500) < 0.9).astype(float)
    worse = correct * (rng.random(500) < 0.9)
    accuracy = paired_difference([PairedCell(np.arange(500), correct, correct, worse)], "accuracy")
    assert accuracy.ci_high < 0 and accuracy.difference == pytest.approx(worse.mean() - 0.9, 0.2)


@pytest.mark.slow
def test_the_95_interval_covers_the_true_difference_93_to_97_percent():
    """Binormal scores: AUROC = Phi(mu / sqrt(2)), so the true difference is known exactly."""
    rng = np.random.default_rng(11)
    mu_base, mu_variant, n = 1.2, 1.0, 60
    truth = norm.cdf(mu_variant / np.sqrt(2)) - norm.cdf(mu_base / np.sqrt(2))
    covered_boot = covered_delong = 0
    draws = 400
    for _ in range(draws):
        shared = rng.normal(0, 1, 2 * n)
        y = np.r_[np.ones(n), np.zeros(n)].astype(int)
        noise = [0.6 * shared + 0.8 * rng.normal(0, 1, 2 * n) for _ in range(2)]
        base, variant = noise[0] + mu_base * y, noise[1] + mu_variant * y
        cell = PairedCell(np.arange(2 * n), y, base, variant)
        estimate = paired_difference([cell], "auroc", n_boot=1000, seed=int(rng.integers(1e9)))
        covered_boot += estimate.ci_low <= truth <= estimate.ci_high
        delong = delong_paired(y, base, variant)
        covered_delong += delong.ci_low <= truth <= delong.ci_high
    assert 0.93 <= covered_delong / draws <= 0.97
    assert 0.93 <= covered_boot / draws <= 0.97
