"""What a verdict would need: ``pytest tests/stats/test_power.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.stats import PairedCell, paired_difference, power_projection
from src.stats.power import variance_components

MU = 1.706  # binormal AUROC 0.886, as on the default data


def test_variance_components_recover_known_variances():
    rng = np.random.default_rng(0)
    for sigma_u2, sigma_e2 in ((1.0, 2.0), (0.3, 0.1), (2.0, 0.5)):
        sizes = rng.integers(2, 6, 300)  # unbalanced: 2-5 cells per unit
        units = np.repeat(np.arange(300), sizes)
        values = rng.normal(0, math.sqrt(sigma_u2), 300)[units]
        values += rng.normal(0, math.sqrt(sigma_e2), units.size)
        s_u, s_e, separable = variance_components(values, units)
        assert separable
        assert s_u == pytest.approx(sigma_u2, rel=0.3) and s_e == pytest.approx(sigma_e2, rel=0.3)
    s_u, s_e, separable = variance_components(np.arange(5.0), np.arange(5))
    assert (s_u, s_e, separable) == (2.5, 0.0, False)  # one value per unit: all persistent


def _design(rng, n_pos, n_neg, cells, persistent=0.3, noise=0.3):
    """``cells`` scorings of the same units: the variant moves each unit by a persistent amount
    and by noise of its own in each cell (a seed's model)."""
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    base = MU * y + rng.normal(0, 1, y.size)
    shift = base + rng.normal(0, persistent, y.size)
    ids = np.arange(y.size)
    return [PairedCell(ids, y, base, shift + rng.normal(0, noise, y.size)) for _ in range(cells)]


def _spread(rng, n_pos, n_neg, cells, sims):
    """Empirical SD of the estimate, and the mean fit, over ``sims`` simulated designs."""
    estimates, fits = [], []
    for _ in range(sims):
        design = _design(rng, n_pos, n_neg, cells)
        estimates.append(paired_difference(design, "auroc", n_boot=1).difference)
        fits.append(power_projection(design, 0.02))
    return float(np.std(estimates)), fits


@pytest.mark.slow
def test_standard_errors_now_and_projected_match_simulation():
    """The fitted SE of the design at hand, and its projection to more seeds and to more
    vehicles, within 15 % of the empirical SD of the estimate over 1,000 simulated designs."""
    rng = np.random.default_rng(1)
    empirical, fits = _spread(rng, 20, 24, 3, 1000)
    se_now = np.sqrt(np.mean([f.se_now**2 for f in fits]))
    s_u, s_e = np.mean([f.sigma_u2 for f in fits]), np.mean([f.sigma_e2 for f in fits])
    print(f"\nse_now {se_now:.4f} vs empirical {empirical:.4f}")
    assert se_now == pytest.approx(empirical, rel=0.15)
    for n_pos, n_neg, cells in ((20, 24, 6), (40, 48, 3), (20, 24, 1)):
        projected = math.sqrt(s_u / n_pos + s_e / (n_pos * cells))
        empirical = _spread(rng, n_pos, n_neg, cells, 1000)[0]
        print(f"n={n_pos} K={cells}: projected {projected:.4f} vs empirical {empirical:.4f}")
        assert projected == pytest.approx(empirical, rel=0.15), (n_pos, cells)


def test_the_projection_says_what_it_would_take():
    rng = np.random.default_rng(2)
    design = _design(rng, 40, 48, 4, persistent=0.0, noise=0.4)
    fit = power_projection(design, 0.02)
    assert fit.n_units == 40 and fit.cells_per_unit == 4 and fit.sigma_e2 > fit.sigma_u2
    target = 0.02 / (1.959963984540054 + 0.8416212335729143)
    assert fit.faulty_needed == math.ceil((fit.sigma_u2 + fit.sigma_e2 / 4) / target**2)
    k = fit.seeds_needed
    assert 4 < k < math.inf and fit.sigma_u2 / 40 + fit.sigma_e2 / (40 * k) <= target**2
    assert fit.sigma_u2 / 40 + fit.sigma_e2 / (40 * (k - 1)) > target**2
    assert f"{fit.faulty_needed} faulty vehicles" in fit.text and f"{k:.0f} seeds" in fit.text
    one = power_projection(design[:1], 0.02)  # one cell: model noise and vehicle not apart
    assert one.seeds_needed == math.inf and "cannot be reached with more seeds alone" in one.text


def test_a_persistent_change_cannot_be_outvoted_by_seeds():
    rng = np.random.default_rng(3)
    fit = power_projection(_design(rng, 10, 12, 5, persistent=0.6, noise=0.05), 0.02)
    assert fit.seeds_needed == math.inf and fit.faulty_needed > 10
    assert "cannot be reached with more seeds alone" in fit.text
    big = power_projection(_design(rng, 400, 480, 2, persistent=0.05, noise=0.05), 0.02)
    assert "within reach" in big.text and big.se_now < 0.02 / 2.8


def test_folds_that_share_only_faulty_vehicles_still_size_seeds():
    """Five folds share faulty vehicles but each has normals of its own: the normals' part
    counts as persistent and the line says so, instead of claiming that no unit recurs."""
    rng = np.random.default_rng(4)
    cells = []
    for fold in range(5):
        y = np.r_[np.ones(20), np.zeros(24)].astype(int)
        ids = np.r_[np.arange(20), 1000 + 24 * fold + np.arange(24)]  # normals fold-specific
        base = MU * y + rng.normal(0, 1, y.size)
        cells.append(PairedCell(ids, y, base, base + rng.normal(0, 0.4, y.size)))
    fit = power_projection(cells, 0.02)
    assert fit.n_units == 20 and fit.cells_per_unit == 5
    assert "normal units never recur across cells" in fit.text
    assert "no unit recurs" not in fit.text
    assert fit.seeds_needed is not None and fit.seeds_needed >= 1
