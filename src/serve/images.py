"""What a shipped image classifier answers: per image, the class probabilities and the label.

The input is the array form the data holds: ``(N, C, H, W)`` pixel values 0-255 (uint8, or any
number type), normalised here with the training split's mean and deviation as the data module
did. The model's log-probabilities are the task's own (:func:`src.tasks.classification.predict`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from src.serve.anomaly import InputError
from src.tasks.classification import predict

PROBABILITY = "p_"  # p_<class name>: a column of the answer


def image_answers(model: nn.Module, request, extras: dict, mixed: bool = False) -> pd.DataFrame:
    """One row per image: ``label`` (the most probable class's name) and ``p_<class>``. Each
    image is its own batch (a dynamic-int8 model quantizes activations per batch, and an answer
    must not depend on the other images of a request); ``mixed``: all in one batch, as an
    evaluation batches them."""
    mean, std = moments(extras)
    x = (_pixels(request, extras) / 255.0 - mean) / std
    chunks = [x] if mixed else list(x.split(1))
    batches = [{"x": c, "y": torch.zeros(len(c), dtype=torch.long)} for c in chunks]
    log_probs: list[np.ndarray] = []
    pred, _, _ = predict(model, batches, log_probs)
    classes = [str(c) for c in extras["classes"]]
    probabilities = np.exp(np.concatenate(log_probs))
    answer = pd.DataFrame(probabilities, columns=[PROBABILITY + c for c in classes])
    answer.insert(0, "label", [classes[i] for i in pred])
    return answer


def moments(extras: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split's per-channel mean and deviation (of pixels / 255), as ``(1, C, 1,
    1)``: ``x = (pixels / 255 - mean) / std``, as the data module normalises."""
    return tuple(torch.tensor(extras[k]).view(1, -1, 1, 1) for k in ("mean", "std"))


def _pixels(request, extras: dict) -> torch.Tensor:
    """The request as float pixels, its shape checked against the model's."""
    array = np.asarray(request)
    size, channels = int(extras["image_size"]), len(extras["mean"])
    if array.ndim != 4 or array.shape[1:] != (channels, size, size):
        raise InputError(
            f"images must be an array (N, {channels}, {size}, {size}) of pixels 0-255; got "
            f"shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise InputError("pixels must be finite numbers 0-255")
    return torch.from_numpy(array.astype(np.float32))
