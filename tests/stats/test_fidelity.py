"""Fidelity statistics: ``python -m pytest tests/stats/test_fidelity.py``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from src.core import schema
from src.stats import (
    FIDELITY_LIMIT,
    fidelity_verdict,
    output_fidelity,
    snippet_change,
    vehicle_fidelity,
)
from src.stats.fidelity import flip_counts, kendall_tau_b, margin_shift, spearman

LABEL_FREE = (
    schema.FIDELITY_FLIPS,
    schema.flips_bound(schema.FIDELITY_FLIPS),
    schema.FIDELITY_FLIPS_AT_BASELINE,
    schema.FIDELITY_N_UNITS,
    schema.FIDELITY_KENDALL,
    schema.FIDELITY_SPEARMAN,
    schema.FIDELITY_MARGIN_SHIFT,
    schema.FIDELITY_MARGIN_MIN,
)


def fleet(seed: int = 0, n: int = 72, noise: float = 0.05):
    """Vehicle scores of a baseline and a perturbed variant, labels, test mask, thresholds."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    base = np.exp(rng.normal(labels * 1.0, 0.5))
    var = base * np.exp(rng.normal(0, noise, n))
    is_test = rng.random(n) < 0.3
    return base, var, labels, is_test, float(np.quantile(base, 0.7)), float(np.quantile(var, 0.7))


@pytest.mark.parametrize("k,n", [(0, 22), (0, 72), (2, 72), (5, 10), (10, 10)])
def test_flip_bound_is_the_one_sided_clopper_pearson_bound(k, n):
    before = np.zeros(n, dtype=int)
    after = before.copy()
    after[:k] = 1
    found = flip_counts(before, after, schema.FIDELITY_FLIPS)
    assert found[schema.FIDELITY_FLIPS] == k
    expected = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert found[schema.flips_bound(schema.FIDELITY_FLIPS)] == pytest.approx(expected, rel=1e-9)


def test_kendall_and_spearman_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 6, 40).astype(float)  # many ties
        y = x + rng.integers(0, 3, 40)
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_a_variant_identical_to_its_baseline_flips_nothing():
    base, _, labels, is_test, thr, _ = fleet()
    found = vehicle_fidelity(base, base.copy(), thr, thr, labels, is_test)
    assert found[schema.FIDELITY_FLIPS] == 0 and found[schema.FIDELITY_FLIPS_AT_BASELINE] == 0
    assert found[schema.FIDELITY_KENDALL] == 1.0 and found[schema.FIDELITY_SPEARMAN] == 1.0
    assert found[schema.FIDELITY_MARGIN_SHIFT] == 0.0
    assert found[schema.FIDELITY_MCNEMAR] == 1.0
    assert found[schema.flips_bound(schema.FIDELITY_FLIPS)] == pytest.approx(0.0499, abs=1e-3)
    errors = np.random.default_rng(0).lognormal(size=300)
    change = snippet_change(errors, errors.copy(), np.repeat(np.arange(30), 10), n_boot=50)
    assert all(v == 0 for v in change.values())


def test_permuting_the_labels_changes_no_label_free_figure():
    base, var, labels, is_test, thr_b, thr_v = fleet(noise=0.3)
    found = vehicle_fidelity(base, var, thr_b, thr_v, labels, is_test)
    assert found[schema.FIDELITY_FLIPS] > 0  # the check has something to keep
    for seed in range(5):
        shuffled = np.random.default_rng(seed).permutation(labels)
        again = vehicle_fidelity(base, var, thr_b, thr_v, shuffled, is_test)
        assert {k: again[k] for k in LABEL_FREE} == {k: found[k] for k in LABEL_FREE}


def test_flips_count_each_threshold_and_margins_bound_them():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    var = np.array([1.0, 2.5, 2.9, 4.0])
    found = vehicle_fidelity(base, var, 2.0, 3.0, np.array([0, 0, 1, 1]), np.ones(4, bool))
    # own thresholds: base flags 3, 4; variant flags 4 only -> one flip (car 3)
    assert found[schema.FIDELITY_FLIPS] == 1 and found[schema.FIDELITY_FLIP_RATE] == 0.25
    # at the baseline's threshold 2.0 the variant flags 2.5, 2.9, 4 -> one flip (car 2)
    assert found[schema.FIDELITY_FLIPS_AT_BASELINE] == 1
    d_b, d_v = np.log(base / 2.0), np.log(var / 3.0)
    assert found[schema.FIDELITY_MARGIN_SHIFT] == pytest.approx(np.abs(d_v - d_b).max())
    # the car on the baseline's threshold (margin 0) is left out of the smallest margin
    assert found[schema.FIDELITY_MARGIN_MIN] == pytest.approx(np.log(1.5))
    assert margin_shift(base, var, 0.0, 3.0) == {}  # no logarithm: no margin claimed


def test_snippet_change_quantiles_and_a_cluster_interval():
    rng = np.random.default_rng(1)
    cars = np.repeat(np.arange(40), 25)
    base = rng.lognormal(size=len(cars))
    var = base * (1 + rng.normal(0, 0.1, 40)[cars])  # a vehicle's snippets move together
    found = snippet_change(base, var, cars, n_boot=300, seed=0)
    change = np.abs(var - base) / base
    assert found[schema.FIDELITY_SNIPPET_MEDIAN] == np.quantile(change, 0.5, method="inverted_cdf")
    assert found[schema.FIDELITY_SNIPPET_P99] == np.quantile(change, 0.99, method="inverted_cdf")
    for name in (schema.FIDELITY_SNIPPET_MEDIAN, schema.FIDELITY_SNIPPET_P99):
        low, high = (found[end] for end in schema.interval(name))
        assert low <= found[name] <= high and low < high
    # resampling snippets alone would ignore the clustering: the vehicle interval is wider
    alone = snippet_change(base, var, np.arange(len(cars)), n_boot=300, seed=0)
    low, high = schema.interval(schema.FIDELITY_SNIPPET_MEDIAN)
    assert found[high] - found[low] > alone[high] - alone[low]


def test_output_fidelity_flips_agreement_and_kl():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(200, 5))
    base = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    noisy = logits + rng.normal(0, 0.5, logits.shape)
    var = noisy - np.log(np.exp(noisy).sum(1, keepdims=True))
    y = rng.integers(0, 5, 200)
    found = output_fidelity(base.argmax(1), var.argmax(1), base, var, y)
    k = int((base.argmax(1) != var.argmax(1)).sum())
    assert found[schema.FIDELITY_FLIPS] == k and found[schema.FIDELITY_N_UNITS] == 200
    assert found[schema.FIDELITY_AGREEMENT] == pytest.approx(1 - k / 200)
    expected = stats.entropy(np.exp(base), np.exp(var), axis=1).mean()
    assert found[schema.FIDELITY_KL] == pytest.approx(expected, rel=1e-9)
    same = output_fidelity(base.argmax(1), base.argmax(1), base, base, y)
    assert same[schema.FIDELITY_FLIPS] == 0 and same[schema.FIDELITY_KL] == 0.0


def _logged(k: int, n: int, at_base: int | None = None, shift=None, margin=None) -> dict:
    values = flip_counts(np.zeros(n), np.r_[np.ones(k), np.zeros(n - k)], schema.FIDELITY_FLIPS)
    values[schema.FIDELITY_N_UNITS] = float(n)
    if at_base is not None:
        flipped = np.r_[np.ones(at_base), np.zeros(n - at_base)]
        values.update(flip_counts(np.zeros(n), flipped, schema.FIDELITY_FLIPS_AT_BASELINE))
    if shift is not None:
        values[schema.FIDELITY_MARGIN_SHIFT], values[schema.FIDELITY_MARGIN_MIN] = shift, margin
    return values


def test_fidelity_verdict_cases():
    verdict, reason = fidelity_verdict(_logged(0, 72, 0, shift=0.1, margin=0.3))
    assert verdict == "behaves like its baseline"
    assert "0/72" in reason and "not an AUROC" in reason and "perturbed like these" in reason
    assert fidelity_verdict(_logged(0, 72, 0, shift=0.4, margin=0.3))[0] == "not shown"
    verdict, reason = fidelity_verdict(_logged(0, 22, 0, shift=0.1, margin=0.3))
    assert verdict == "not shown" and "0/22" in reason and "0.154" in reason
    assert "too few units" in reason
    verdict, reason = fidelity_verdict(_logged(3, 72, 1, shift=0.5, margin=0.3))
    assert (
        verdict == "differs"
        and "3/72" in reason
        and f"(bound {stats.beta.ppf(0.975, 4, 69):.3f})" in reason
    )
    # judged on the decisions each model deploys; its scores at the baseline's cut are stated
    verdict, reason = fidelity_verdict(_logged(0, 400, 30))
    assert (
        verdict == "behaves like its baseline" and "30/400 units flip at the baseline's" in reason
    )
    assert fidelity_verdict(_logged(0, 72, 5, shift=0.1, margin=0.3))[0] == verdict
    # images: no margins; 1 flip in 1,000 is bounded well under the limit
    assert fidelity_verdict(_logged(1, 1000))[0] == "behaves like its baseline"
    assert fidelity_verdict(_logged(60, 1000))[0] == "differs"
    assert fidelity_verdict({})[0] == "not measured"
    no_bound = {schema.FIDELITY_FLIPS: 0.0, schema.FIDELITY_N_UNITS: 72.0}
    assert fidelity_verdict(no_bound)[0] == "not measured"
    assert fidelity_verdict({"test/auroc": 0.9})[0] == "not measured"
    assert FIDELITY_LIMIT == 0.05
