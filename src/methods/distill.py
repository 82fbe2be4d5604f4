"""``+method=distill``: knowledge distillation into a smaller student of the same family.

The teacher is the trained baseline (found, trained, or ``method.teacher_run_id``). The student is
the teacher's architecture with ``method.student`` overrides (e.g. DyAD ``hidden_size: 16``, a
narrower CNN), trained from scratch on the task loss plus ``alpha`` x a distillation loss:

- classification: KL divergence of temperature-softened logits, times ``T^2`` (Hinton et al.);
- anomaly (DyAD): MSE between student and teacher predicted responses, plus ``beta`` x MSE of the
  latent means (through a learned projection when the latent sizes differ).

The teacher runs in eval mode without gradients and is never a parameter of the student.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from src.errors import ConfigError
from src.methods.base import Method, MethodConfig, MethodContext, register_method

KINDS = ("anomaly", "classification")


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


class DistillLoss(nn.Module):
    """``extra_loss`` for the task module: called with the batch input and the student output.

    Args:
        teacher: The trained model; kept out of the module tree so it is neither trained nor
            switched to train mode.
        kind: ``anomaly`` or ``classification``.
        alpha, temperature, beta: See :class:`DistillConfig`.
        student_latent: The student's latent size (DyAD) for the feature projection.
    """

    def __init__(self, teacher, kind, alpha, temperature=4.0, beta=0.0, student_latent=None):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"distillation knows tasks {KINDS}, not {kind!r}")
        self._teacher = (teacher.eval(),)
        self.kind, self.alpha, self.temperature, self.beta = kind, alpha, temperature, beta
        self.project = None
        if kind == "anomaly" and beta > 0:
            width = teacher.config.latent_size
            same = student_latent == width
            self.project = nn.Identity() if same else nn.Linear(student_latent, width)

    def forward(self, x: torch.Tensor, student_out) -> dict[str, torch.Tensor]:
        teacher = self._teacher[0].eval()
        with torch.no_grad():
            teacher_out = teacher(x)
        if self.kind == "classification":
            parts = {"distill": self._soft_kl(student_out, teacher_out)}
        else:
            parts = {"distill": F.mse_loss(student_out.prediction, teacher_out.prediction)}
            if self.project is not None:
                parts["feature"] = F.mse_loss(self.project(student_out.mean), teacher_out.mean)
        total = self.alpha * parts["distill"] + self.beta * parts.get("feature", 0.0)
        return {**parts, "total": total}

    def _soft_kl(self, student_logits, teacher_logits) -> torch.Tensor:
        t = self.temperature
        log_student = F.log_softmax(student_logits / t, dim=1)
        log_teacher = F.log_softmax(teacher_logits / t, dim=1)
        kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
        return kl * t * t


@register_method("distill")
class Distill(Method):
    config_class = DistillConfig

    def apply(self, model: nn.Module, config: DistillConfig, context: MethodContext) -> nn.Module:
        student = make_student(model, config.student)
        loss = DistillLoss(
            model,
            context.task,
            float(config.alpha),
            float(config.temperature),
            float(config.beta),
            getattr(student.config, "latent_size", None),
        )
        context.fine_tune(student, config.epochs, config.lr, extra_loss=loss)
        return student.eval()

    def rebuild(self, model: nn.Module, config: DistillConfig) -> nn.Module:
        # The artifact stores the student's own config: the model built from it is the student.
        return model
