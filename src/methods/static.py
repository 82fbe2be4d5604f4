"""``+method=static``: post-training static int8 with calibration.

Observers record activation ranges on ``calibration_batches`` training batches; weights are
quantized per output channel (default) or per tensor. Conv-BN-ReLU blocks are fused. PyTorch has
no static int8 GRU, so DyAD's GRUs are first decomposed into explicit Linear projections
(``src.models.gru``) that static quantization can reach; the gate arithmetic stays fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import ClassVar

import torch
from torch import nn

from src.core.errors import ConfigError
from src.core.progress import progress
from src.methods.base import (
    CALIBRATION_BATCHES,
    OBSERVER,
    Method,
    MethodConfig,
    MethodContext,
    register_method,
)
from src.quant import backend


@dataclass
class StaticConfig(MethodConfig):
    """Attributes:
    observer: Activation observer: ``minmax``, ``moving_average`` or ``histogram``.
    per_channel: Per-output-channel weight scales (else per tensor).
    calibration_batches: Training batches that calibrate the observers.
    decompose_gru: Replace ``nn.GRU`` by Linear projections so they are quantized too.
    """

    observer: str = OBSERVER
    per_channel: bool = True
    calibration_batches: int = CALIBRATION_BATCHES
    decompose_gru: bool = True
    KIND: ClassVar[str] = "static"

    def __post_init__(self) -> None:
        if self.observer not in backend.OBSERVERS:
            raise ConfigError(
                f"method.observer={self.observer!r}; choose one of {sorted(backend.OBSERVERS)}"
            )
        if int(self.calibration_batches) < 1:
            raise ConfigError(f"method.calibration_batches={self.calibration_batches} must be >= 1")

    @property
    def calibration_count(self) -> int:
        return int(self.calibration_batches)


def prepare(model: nn.Module, decompose_gru: bool, config, qat: bool) -> nn.Module:
    """Decompose GRUs (optionally), fuse, stub the regions, insert observers or fake quant."""
    if decompose_gru:
        from src.models.gru import decompose_grus

        decompose_grus(model)
    return backend.prepare_static(model, backend.default_regions(model), config, qat)


@torch.inference_mode()
def calibrate(model: nn.Module, loader, batches: int) -> int:
    """Run ``batches`` batches through the observed model; returns how many it saw."""
    model.eval()
    seen = 0
    for batch in progress(islice(loader, batches), "calibrating", total=batches):
        model(batch["x"])
        seen += 1
    return seen


@register_method(StaticConfig)
class Static(Method):
    def apply(self, model: nn.Module, config: StaticConfig, context: MethodContext) -> nn.Module:
        qconfig = backend.qconfig(config.observer, config.per_channel)
        prepared = prepare(model, config.decompose_gru, qconfig, qat=False)
        calibrate(prepared, context.data.calibration_dataloader(), config.calibration_batches)
        return backend.convert(prepared)

    def rebuild(self, model: nn.Module, config: StaticConfig) -> nn.Module:
        qconfig = backend.qconfig(config.observer, config.per_channel)
        with backend.quiet():
            return backend.convert(prepare(model, config.decompose_gru, qconfig, qat=False))
