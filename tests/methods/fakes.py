"""A task and data for method tests that select on a tuning split, without a datamodule.

:class:`OutputTask`'s tuning loss is 1 + the mean squared difference of a model's predictions
from the reference model's on fixed inputs: it rises exactly as far as a treatment moves the
outputs, which is what a sensitivity ranking has to see.
"""

from __future__ import annotations

import torch

from src.models import create_model

SHAPE = (6, 16, 7)  # (batch, time, channels) of dyad_tiny inputs


class Batches:
    """Calibration batches of fixed random inputs."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def calibration_dataloader(self):
        return [{"x": self.x}] * 4


class OutputTask:
    """``tune``: tuning/loss and tuning/auroc (constant) of a model against ``reference``."""

    def __init__(self, reference: torch.nn.Module, x: torch.Tensor) -> None:
        self.reference, self.x, self.calls = reference, x, 0

    @torch.inference_mode()
    def tune(self, model, data, seed, subsample=None) -> dict[str, float]:
        self.calls += 1
        error = (model(self.x).prediction - self.reference(self.x).prediction).pow(2).mean()
        return {"tuning/loss": 1.0 + 1e3 * float(error), "tuning/auroc": 1.0}


def dyad_setup(seed: int = 0):
    """``(model, task, data)``: dyad_tiny (eval), its OutputTask and calibration batches."""
    torch.manual_seed(seed)
    model = create_model("dyad_tiny").eval()
    x = torch.randn(*SHAPE)
    return model, OutputTask(model, x), Batches(x)
