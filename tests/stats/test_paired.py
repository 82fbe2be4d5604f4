"""Paired estimates, their intervals and non-inferiority p-values:
``pytest tests/stats/test_paired.py`` (calibration by simulation: ``test_calibration.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t
from sklearn.metrics import roc_auc_score

from src.stats import PairedCell, delong_paired, paired_difference


def _fold(rng, ids, tau=0.4, mu=1.7, n_pos=10, n_neg=12):
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    base = mu * y + rng.normal(0, 1, y.size)
    return PairedCell(ids, y, base, base + rng.normal(0, tau, y.size))


def test_one_auroc_cell_gets_delong_with_a_t_quantile():
    rng = np.random.default_rng(0)
    cell = _fold(rng, np.arange(22))
    est = paired_difference([cell], "auroc", margin=0.02)
    test = delong_paired(cell.labels, cell.baseline, cell.variant)
    half = t.ppf(0.975, 9) * test.se
    assert (est.ci_low, est.ci_high) == pytest.approx(
        (test.difference - half, test.difference + half)
    )
    assert est.p_ni == pytest.approx(t.sf((test.difference + 0.02) / test.se, 9))
    assert est.method == "DeLong-t (df=9)" and "DeLong" in est.resampled and "df=9" in est.resampled
    assert (est.alpha, est.mc_se, est.nan_replicates, est.draws) == (0.025, 0.0, 0, None)


def test_p_ni_is_below_alpha_exactly_when_the_bound_clears_the_margin():
    rng = np.random.default_rng(1)
    agree = 0
    for draw in range(200):
        cell = _fold(rng, np.arange(22), tau=rng.uniform(0.05, 0.6))
        margin = rng.uniform(0.005, 0.08)
        for higher in (True, False):
            est = paired_difference([cell], "auroc", margin=margin, higher_is_better=higher)
            if est.discordance.identical:
                continue
            bound = est.ci_low if higher else -est.ci_high
            assert (est.p_ni < est.alpha) == (bound > -margin), (draw, higher)
            agree += 1
    assert agree > 300


def test_a_lower_is_better_statistic_is_mirrored():
    rng = np.random.default_rng(2)
    cell = _fold(rng, np.arange(22))
    up = paired_difference([cell], "auroc", margin=0.05)
    down = paired_difference([cell], "auroc", margin=0.05, higher_is_better=False)
    assert (down.ci_low, down.ci_high) == (up.ci_low, up.ci_high)
    se = delong_paired(cell.labels, cell.baseline, cell.variant).se
    assert down.p_ni == pytest.approx(t.sf((0.05 - up.difference) / se, 9))


def test_no_changed_pair_gives_a_zero_interval_without_a_p_value():
    y = np.r_[np.ones(5), np.zeros(5)]
    s = np.arange(10.0)
    for cells, statistic in (
        ([PairedCell(np.arange(10), y, s, np.exp(s))], "auroc"),  # monotone: same ranking
        ([PairedCell(np.arange(10), y, s, s)] * 2, "auroc"),
        ([PairedCell(np.arange(10), y, y, y)], "accuracy"),
    ):
        est = paired_difference(cells, statistic, n_boot=200, margin=0.02)
        assert (est.difference, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0)
        assert est.discordance.identical and math.isnan(est.p_ni)
        assert "identical" in est.method and "no interval" in est.resampled


def test_several_cells_get_the_joint_bootstrap_and_its_p_value():
    rng = np.random.default_rng(3)
    cells, diffs = [], []
    for fold in range(3):
        cell = _fold(rng, np.array([f"car{fold}-{i}" for i in range(22)]), tau=0.5)
        cells.append(cell)
        diffs.append(
            roc_auc_score(cell.labels, cell.variant) - roc_auc_score(cell.labels, cell.baseline)
        )
    est = paired_difference(cells, "auroc", n_boot=500, margin=0.05, seed=4)
    assert est.difference == pytest.approx(np.mean(diffs))
    assert est.ci_low < est.difference < est.ci_high
    assert (est.n_cells, est.n_units) == (3, 66) and "stratified" in est.resampled
    assert "percentile bootstrap" in est.resampled and est.method.startswith("percentile bootstrap")
    assert est.draws is not None and est.ci_low == pytest.approx(np.quantile(est.draws, 0.025))
    expected = (1 + np.sum(est.draws <= -0.05)) / (est.draws.size + 1)
    assert est.p_ni == pytest.approx(expected) and 0 < est.mc_se < 0.05


def test_a_unit_shared_by_cells_is_resampled_once_not_once_per_cell():
    """Two folds with the very same test vehicles carry no more evidence than one: joint
    resampling gives the same interval; resampling each fold on its own would narrow it."""
    rng = np.random.default_rng(2)
    ids, y = np.arange(40), (np.arange(40) < 15).astype(int)
    base = y + rng.normal(0, 1, 40)
    cell = PairedCell(ids, y, base, base + rng.normal(0, 0.7, 40))
    two = paired_difference([cell, cell], "auroc", n_boot=1000, seed=5)
    three = paired_difference([cell, cell, cell], "auroc", n_boot=1000, seed=5)
    assert (two.ci_low, two.ci_high) == pytest.approx((three.ci_low, three.ci_high))
    apart = PairedCell(ids + 100, y, cell.baseline, cell.variant)  # other vehicles, same scores
    wider = paired_difference([cell, apart], "auroc", n_boot=1000, seed=5)
    assert wider.ci_high - wider.ci_low < two.ci_high - two.ci_low


def test_a_bound_near_the_margin_is_redrawn_with_five_times_the_draws():
    rng = np.random.default_rng(6)
    cells = [_fold(rng, np.array([f"c{k}-{i}" for i in range(22)]), tau=0.5) for k in range(2)]
    far = paired_difference(cells, "auroc", n_boot=400, margin=1.0)
    assert far.method == "percentile bootstrap (400 draws)" and far.draws.size == 400
    margin = -far.ci_low + 0.001
    near = paired_difference(cells, "auroc", n_boot=400, margin=margin)
    assert near.method.startswith("percentile bootstrap (2000 draws") and near.draws.size == 2000
    assert "2000 draws" in near.resampled and near.mc_se < far.mc_se
    assert abs(near.ci_low + margin) < 0.002  # still close after the redraw: its error is said
    assert f"Monte Carlo se {near.mc_se:.4f}" in near.method


def test_cell_replicates_that_lose_a_class_are_counted():
    rng = np.random.default_rng(7)
    lonely = PairedCell(
        np.array(["f0", "n0", "n1", "n2"]),
        np.array([1, 0, 0, 0]),
        rng.normal(size=4),
        rng.normal(size=4),
    )
    others = _fold(rng, np.arange(22))  # ten more faulty vehicles: f0 is drawn 0 times often
    est = paired_difference([lonely, others], "auroc", n_boot=1000, seed=1)
    share = (1 - 1 / 11) ** 11  # P(a given one of 11 faulty vehicles is not drawn)
    assert est.nan_replicates == pytest.approx(1000 * share, rel=0.15)
    assert est.draws.size == 1000  # the other cell still carries every replicate
    assert f"{est.nan_replicates} cell draws lost a class" in est.method  # said, not dropped
    assert paired_difference([others, others], "auroc", n_boot=200).nan_replicates == 0


def test_one_accuracy_cell_gets_an_adjusted_wald_interval():
    rng = np.random.default_rng(3)
    correct = (rng.random(2000) < 0.9).astype(float)
    worse = correct * (rng.random(2000) < 0.95)
    est = paired_difference(
        [PairedCell(np.arange(2000), correct, correct, worse)], "accuracy", margin=0.01
    )
    lost = float(np.sum(correct > worse))
    assert est.difference == pytest.approx(-lost / 2000) and est.ci_high < 0
    p12, p21 = (lost + 1) / 2002, 1 / 2002
    se = np.sqrt((p12 + p21 - (p21 - p12) ** 2) / 2002)
    assert est.ci_low == pytest.approx(p21 - p12 - 1.959963984540054 * se)
    assert est.method == "paired-proportion adjusted Wald (z)" and est.p_ni > 0.5


def test_inputs_are_checked():
    cell = PairedCell(np.arange(4), np.array([1, 1, 1, 1]), np.arange(4.0), np.arange(4.0) + 1)
    with pytest.raises(ValueError, match="normal and faulty"):
        paired_difference([cell], "auroc")
    with pytest.raises(ValueError, match="statistic must be one of"):
        paired_difference([cell], "f1")
    with pytest.raises(ValueError, match="at least one cell"):
        paired_difference([], "auroc")


def test_one_cell_with_a_single_faulty_unit_falls_back_to_the_bootstrap_and_says_so():
    y = np.r_[1, np.zeros(6)].astype(int)
    base = np.array([3.5, 0, 1, 2, 3, 4, 5])
    variant = np.array([1.5, 0, 1, 2, 3, 4, 5])  # the faulty vehicle drops below two normals
    est = paired_difference([PairedCell(np.arange(7), y, base, variant)], "auroc", n_boot=300)
    assert est.difference == pytest.approx(-2 / 6) and est.discordance.worse == 2
    assert est.method == "percentile bootstrap (300 draws)" and est.draws is not None
