"""``+method=qat``: quantization-aware training, prepare -> train -> convert.

Fake quantization of weights and activations (the decomposed GRU's projections included) is
inserted into a copy of the trained baseline, which is fine-tuned with the task's own loss for
``epochs`` at ``lr`` and then converted to real int8 modules. Everything measured afterwards is the
converted model, never the fake-quantized one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from src.core.errors import ConfigError
from src.methods.base import Method, MethodConfig, MethodContext, register_method
from src.methods.static import prepare
from src.quant import backend


@dataclass
class QATConfig(MethodConfig):
    """Attributes:
    epochs: Fine-tuning epochs with fake quantization.
    lr: Fine-tuning learning rate (small: the baseline is already trained).
    per_channel: Per-output-channel weight scales.
    decompose_gru: Replace ``nn.GRU`` by Linear projections so they are fake-quantized too.
    """

    epochs: int = 1
    lr: float = 1e-4
    per_channel: bool = True
    decompose_gru: bool = True
    KIND: ClassVar[str] = "qat"

    def __post_init__(self) -> None:
        if int(self.epochs) < 1:
            raise ConfigError(f"method.epochs={self.epochs} must be >= 1")
        if not 0 < float(self.lr) < 1:
            raise ConfigError(f"method.lr={self.lr} must be in (0, 1)")


@register_method(QATConfig)
class QAT(Method):
    def apply(self, model: nn.Module, config: QATConfig, context: MethodContext) -> nn.Module:
        prepared = prepare(
            model, config.decompose_gru, backend.qat_qconfig(config.per_channel), qat=True
        )
        context.fine_tune(prepared, int(config.epochs), float(config.lr))
        return backend.convert(prepared)

    def rebuild(self, model: nn.Module, config: QATConfig) -> nn.Module:
        prepared = prepare(
            model, config.decompose_gru, backend.qat_qconfig(config.per_channel), qat=True
        )
        with backend.quiet():
            return backend.convert(prepared)
