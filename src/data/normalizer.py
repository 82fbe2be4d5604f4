"""Per-channel normaliser, fitted on training cars only and saved with the model.

Two modes:

- ``reference``: DyAD's ``utils.Normalizer``. Statistics of the first 200 training snippets:
  max/min over all their values, mean of per-snippet means, mean of per-snippet stds, and the
  divisor ``max(max(1e-4, std), 0.1 * (max - min))`` (almost always 0.1 x range).
- ``global`` (default): mean and standard deviation over every value of every training snippet,
  divisor ``max(std, 1e-4)``. Streams over the memmap in chunks, so any size fits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.core.errors import ConfigError

MODES = ("reference", "global")
REFERENCE_SNIPPETS = 200
_CHUNK = 4096


@dataclass(frozen=True)
class Normalizer:
    """``x_norm = (x - mean) / scale`` per channel (all channels of the array, in order)."""

    mode: str
    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale).astype(np.float32, copy=False)

    def state_dict(self) -> dict:
        """Plain lists: the model artifact stays loadable with ``weights_only=True``."""
        return {"mode": self.mode, "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> Normalizer:
        return cls(
            state["mode"],
            np.asarray(state["mean"], np.float32),
            np.asarray(state["scale"], np.float32),
        )


def fit_normalizer(
    snippets: np.ndarray, train_index: np.ndarray, mode: str = "global"
) -> Normalizer:
    """Fit on the training snippets ``snippets[train_index]`` (in protocol order).

    Raises:
        ValueError: Unknown mode or no training snippets.
    """
    if mode not in MODES:
        raise ConfigError(f"data.normalizer={mode!r} is unknown; choose one of {MODES}")
    if len(train_index) == 0:
        raise ConfigError("no training snippets to fit the normaliser; check the split")
    if mode == "reference":
        return _fit_reference(np.asarray(snippets[train_index[:REFERENCE_SNIPPETS]], np.float64))
    return _fit_global(snippets, train_index)


def _fit_reference(first: np.ndarray) -> Normalizer:
    spread = first.max(axis=(0, 1)) - first.min(axis=(0, 1))
    std = first.std(axis=1).mean(axis=0)
    scale = np.maximum(np.maximum(1e-4, std), 0.1 * spread)
    return Normalizer(
        "reference", first.mean(axis=1).mean(axis=0).astype(np.float32), scale.astype(np.float32)
    )


def _fit_global(snippets: np.ndarray, index: np.ndarray) -> Normalizer:
    # Shifted sums (around the first snippet's mean) keep float64 sums of ~1e8 values accurate.
    shift = np.asarray(snippets[index[0]], np.float64).mean(axis=0)
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(index), _CHUNK):
        chunk = np.asarray(snippets[np.sort(index[start : start + _CHUNK])], np.float64) - shift
        total = total + chunk.sum(axis=(0, 1))
        total_sq = total_sq + np.square(chunk).sum(axis=(0, 1))
        count += chunk.shape[0] * chunk.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return Normalizer(
        "global", (mean + shift).astype(np.float32), np.maximum(std, 1e-4).astype(np.float32)
    )
