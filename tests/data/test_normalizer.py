"""Normaliser modes: ``python -m pytest tests/data/test_normalizer.py``."""

import numpy as np
import pytest

from src.core.errors import ConfigError
from src.data.normalizer import Normalizer, fit_normalizer


@pytest.fixture
def snippets():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 1, 3)) * [1.0, 10.0, 0.0] + [0.0, 5.0, 2.0]
    return (base + rng.normal(scale=0.01, size=(300, 128, 3))).astype(np.float32)


def test_reference_mode_uses_first_200_and_reference_divisor(snippets):
    index = np.arange(50, 300)  # protocol order need not start at row 0
    norm = fit_normalizer(snippets, index, "reference")
    first = snippets[index[:200]].astype(np.float64)
    std = first.std(axis=1).mean(axis=0)
    spread = first.max(axis=(0, 1)) - first.min(axis=(0, 1))
    np.testing.assert_allclose(norm.mean, first.mean(axis=1).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        norm.scale, np.maximum(np.maximum(1e-4, std), 0.1 * spread), rtol=1e-5
    )


def test_global_mode_matches_numpy_over_all_training_snippets(snippets):
    index = np.arange(0, 300, 2)
    norm = fit_normalizer(snippets, index, "global")
    values = snippets[index].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(norm.mean, values.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.scale, np.maximum(values.std(axis=0), 1e-4), rtol=1e-4)


def test_constant_channel_does_not_divide_by_zero(snippets):
    snippets[..., 2] = 2.0
    for mode in ("global", "reference"):
        out = fit_normalizer(snippets, np.arange(300), mode)(snippets)
        assert np.isfinite(out).all()


def test_only_training_rows_matter(snippets):
    index = np.arange(100)
    before = fit_normalizer(snippets, index, "global")
    snippets[100:] += 1e6  # tuning/test rows
    after = fit_normalizer(snippets, index, "global")
    np.testing.assert_array_equal(before.mean, after.mean)


def test_round_trip_and_bad_mode(snippets):
    norm = fit_normalizer(snippets, np.arange(300))
    again = Normalizer.from_state_dict(norm.state_dict())
    np.testing.assert_array_equal(norm(snippets[:2]), again(snippets[:2]))
    with pytest.raises(ConfigError, match="data.normalizer='zscore'"):
        fit_normalizer(snippets, np.arange(10), "zscore")
