"""Calibration data for runtime tests, without a datamodule."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Calibration:
    """What a method reads for calibration: ``batches`` as the datamodule's ``{"x": ...}``."""

    def __init__(self, batches: Sequence[torch.Tensor]) -> None:
        self.batches = [{"x": b} for b in batches]

    def calibration_dataloader(self):
        return self.batches
