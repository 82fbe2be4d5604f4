"""DyAD's training: the reference loss, its KL annealing, the LightningModule, and the
distillation loss that matches a teacher's predicted responses."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from src.core.errors import ConfigError
from src.tasks.base import OptimSpec, TeacherLoss, adamw_cosine


@dataclass(frozen=True)
class DyadLoss:
    """Reference loss weights: ``nll_weight*SmoothL1 + latent_label_weight*MSE + kl_w(step)*KL/B``.

    KL weight annealing: ``linear`` = anneal0 * min(1, step/x0); ``logistic`` =
    anneal0 / (1 + exp(-k (step - x0))); ``constant`` = anneal0. ``step`` counts batches from 1.
    """

    nll_weight: float = 10.0
    latent_label_weight: float = 0.001
    anneal0: float = 0.1
    anneal_function: str = "linear"
    x0: float = 500.0
    k: float = 0.0025

    def __post_init__(self) -> None:
        if self.anneal_function not in ("linear", "logistic", "constant"):
            raise ConfigError(
                f"task.loss.anneal_function={self.anneal_function!r}; choose "
                "linear, logistic or constant"
            )
        if self.x0 <= 0:
            raise ConfigError(f"task.loss.x0 must be > 0, got {self.x0}")

    def kl_weight(self, step: int) -> float:
        if self.anneal_function == "linear":
            return self.anneal0 * min(1.0, step / self.x0)
        if self.anneal_function == "logistic":
            return self.anneal0 / (1.0 + math.exp(-self.k * (step - self.x0)))
        return self.anneal0


class AnomalyModule(pl.LightningModule):
    """Trains a DyAD-style model on normal snippets with the reference loss, AdamW and cosine LR.

    Args:
        model: Module whose forward returns ``(prediction, mean, log_var, z, mileage)`` and that
            has ``split_target(x)``.
        loss: Loss weights and KL annealing.
        optim: AdamW and its cosine schedule (reference: lr 5e-3, weight decay 1e-6).
        max_epochs: Epochs of the cosine schedule (stepped once per epoch, as the reference).
        extra_loss: Optional module ``extra_loss(x, output) -> {name: tensor, "total": tensor}``
            whose ``total`` is added to the loss (distillation); its parts are logged.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: DyadLoss,
        optim: OptimSpec,
        max_epochs: int = 1,
        extra_loss: nn.Module | None = None,
    ):
        super().__init__()
        self.model, self.loss, self.extra_loss = model, loss, extra_loss
        self.optim, self.max_epochs = optim, max(1, max_epochs)

    def forward(self, x: torch.Tensor):
        return self.model(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        parts = self.loss_parts(batch, step=self.global_step + 1)
        self.log_dict(
            {f"train/{k}": v for k, v in parts.items()},
            prog_bar=False,
            on_step=True,
            on_epoch=True,
            batch_size=batch["x"].shape[0],
            sync_dist=True,  # under DDP the epoch value is every rank's, not rank 0's half
        )
        self.log("loss", parts["loss"], prog_bar=True, logger=False, on_step=True)
        return parts["loss"]

    def loss_parts(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """The reference loss and its parts for one batch at KL-annealing step ``step``."""
        x = batch["x"]
        out = self.model(x)
        nll = F.smooth_l1_loss(out.prediction, self.model.split_target(x))
        label = F.mse_loss(out.mileage, batch["mileage"])
        kl = -0.5 * torch.sum(1 + out.log_var - out.mean.pow(2) - out.log_var.exp())
        kl_weight = self.loss.kl_weight(step)
        loss = (
            self.loss.nll_weight * nll
            + self.loss.latent_label_weight * label
            + kl_weight * kl / x.shape[0]
        )
        extra = self.extra_loss(x, out) if self.extra_loss is not None else {}
        loss = loss + extra.pop("total", 0.0)
        return {
            **extra,
            "loss": loss,
            "nll": nll,
            "label": label,
            "kl": kl / x.shape[0],
            "kl_weight": torch.tensor(kl_weight),
        }

    def configure_optimizers(self):
        return adamw_cosine(self.parameters(), self.optim, self.max_epochs)


class ResponseDistillLoss(TeacherLoss):
    """DyAD distillation: MSE between the student's and the teacher's predicted responses, plus
    ``beta`` x MSE of the latent means (through a learned projection when the sizes differ).

    Args:
        teacher: The trained model (eval mode, no gradients).
        alpha: Weight of the response term.
        beta: Weight of the latent-mean term (0 turns it off).
        student_latent: The student's latent size.
    """

    def __init__(self, teacher: nn.Module, alpha: float, beta: float, student_latent: int):
        super().__init__(teacher, alpha)
        self.beta = beta
        self.project = None
        if beta > 0:
            width = teacher.config.latent_size
            same = student_latent == width
            self.project = nn.Identity() if same else nn.Linear(student_latent, width)

    def forward(self, x: torch.Tensor, student_out) -> dict[str, torch.Tensor]:
        teacher_out = self.teacher_output(x)
        parts = {"distill": F.mse_loss(student_out.prediction, teacher_out.prediction)}
        if self.project is not None:
            parts["feature"] = F.mse_loss(self.project(student_out.mean), teacher_out.mean)
        total = self.alpha * parts["distill"] + self.beta * parts.get("feature", 0.0)
        return {**parts, "total": total}
