"""``+method=distill``: knowledge distillation into a smaller student of the same family.

The teacher is the trained baseline (found, trained, or ``method.teacher_run_id``). The student is
the teacher's architecture with ``method.student`` overrides (e.g. DyAD ``hidden_size: 16``, a
narrower CNN), trained from scratch on the task loss plus ``alpha`` x the task's own distillation
loss (``Task.distill_loss``): softened-logit KL for classification, predicted-response matching
(plus ``beta`` x latent-mean matching) for DyAD.

The teacher runs in eval mode without gradients and is never a parameter of the student.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from src.core.errors import ConfigError
from src.methods.base import Method, MethodConfig, MethodContext, register_method


@dataclass
class DistillConfig(MethodConfig):
    """Attributes:
    student: Architecture overrides of the student (keys of the model's config).
    teacher_run_id: MLflow run of the teacher (default: this config's baseline run).
    alpha: Weight of the distillation loss added to the task loss.
    temperature: Softening temperature of the logits (classification).
    beta: Weight of latent-mean feature matching (DyAD; 0 turns it off).
    epochs: Student training epochs (``null``: ``trainer.max_epochs``).
    lr: Student learning rate (``null``: ``optim.lr``).
    """

    student: dict = field(default_factory=dict)
    teacher_run_id: str | None = None
    alpha: float = 1.0
    temperature: float = 4.0
    beta: float = 0.0
    epochs: int | None = None
    lr: float | None = None
    KIND: ClassVar[str] = "distill"

    def __post_init__(self) -> None:
        if not self.student:
            raise ConfigError(
                "method.student is empty; give the smaller architecture, e.g. "
                "method.student.hidden_size=16"
            )
        if float(self.alpha) < 0 or float(self.beta) < 0 or float(self.temperature) <= 0:
            raise ConfigError("method.alpha and method.beta must be >= 0, temperature > 0")
        if self.epochs is not None and int(self.epochs) < 1:
            raise ConfigError(f"method.epochs={self.epochs} must be >= 1 (or null)")
        self.baseline_run_id = self.teacher_run_id or self.baseline_run_id


def make_student(teacher: nn.Module, overrides: dict) -> nn.Module:
    """A freshly initialised model of the teacher's class with ``overrides`` on its config."""
    config = teacher.config
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(config)})
    if unknown:
        raise ConfigError(
            f"method.student has unknown key(s) {unknown}; keys of {type(config).__name__}: "
            f"{sorted(f.name for f in dataclasses.fields(config))}"
        )
    return type(teacher)(dataclasses.replace(config, **overrides))


@register_method(DistillConfig)
class Distill(Method):
    def apply(self, model: nn.Module, config: DistillConfig, context: MethodContext) -> nn.Module:
        student = make_student(model, config.student)
        loss = context.task.distill_loss(
            model,
            student,
            alpha=float(config.alpha),
            temperature=float(config.temperature),
            beta=float(config.beta),
        )
        context.fine_tune(student, config.epochs, config.lr, extra_loss=loss)
        return student.eval()

    def rebuild(self, model: nn.Module, config: DistillConfig) -> nn.Module:
        # The artifact stores the student's own config: the model built from it is the student.
        return model
