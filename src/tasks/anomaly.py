"""``anomaly`` task: one-class training of DyAD and vehicle-level scoring.

Training uses the reference loss; scoring uses per-snippet MSE of the predicted responses (the
reference trains with SmoothL1 but scores with MSE), aggregated per vehicle with h and the
threshold chosen on the tuning vehicles only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from src.errors import ConfigError
from src.evaluation.vehicle import evaluate_vehicles
from src.models.util import input_dtype
from src.tasks.base import EvalResult, adamw_cosine, optim_kwargs


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
                f"model.loss.anneal_function={self.anneal_function!r}; choose "
                "linear, logistic or constant"
            )
        if self.x0 <= 0:
            raise ConfigError(f"model.loss.x0 must be > 0, got {self.x0}")

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
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (reference: 1e-6).
        cosine_factor: ``eta_min = cosine_factor * lr``; the cosine period is ``max_epochs``.
        max_epochs: Epochs of the cosine schedule (stepped once per epoch, as the reference).
        extra_loss: Optional module ``extra_loss(x, output) -> {name: tensor, "total": tensor}``
            whose ``total`` is added to the loss (distillation); its parts are logged.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: DyadLoss,
        lr: float,
        weight_decay: float = 1e-6,
        cosine_factor: float = 0.1,
        max_epochs: int = 1,
        extra_loss: nn.Module | None = None,
    ):
        super().__init__()
        self.model, self.loss, self.extra_loss = model, loss, extra_loss
        self.lr, self.weight_decay = lr, weight_decay
        self.cosine_factor, self.max_epochs = cosine_factor, max(1, max_epochs)

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
        return adamw_cosine(
            self.parameters(), self.lr, self.weight_decay, self.cosine_factor, self.max_epochs
        )


def build_module(model: nn.Module, cfg, extra_loss: nn.Module | None = None) -> AnomalyModule:
    """The LightningModule for ``model`` from the composed config (plus an optional extra loss)."""
    return AnomalyModule(
        model,
        DyadLoss(**cfg.model.loss),
        **optim_kwargs(cfg),
        extra_loss=extra_loss,
    )


@torch.inference_mode()
def snippet_errors(model: nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """Per-snippet MSE of the predicted responses (eval mode, z = mean), with snippet rows."""
    was_training, dtype = model.training, input_dtype(model)
    model.eval()
    errors, rows = [], []
    try:
        for batch in loader:
            x = batch["x"]
            out = model(x.to(dtype))
            err = (out.prediction.float() - model.split_target(x)).pow(2).mean(dim=(1, 2))
            errors.append(err.numpy())
            rows.append(batch["row"].numpy())
    finally:
        model.train(was_training)
    return np.concatenate(errors), np.concatenate(rows)


def evaluate(model: nn.Module, data, cfg) -> EvalResult:
    """Score tuning and test vehicles; h and the threshold come from the tuning vehicles only."""
    split = data.split
    errors, rows = snippet_errors(model, data.score_dataloader(split.tuning_cars + split.test_cars))
    result = evaluate_vehicles(
        errors,
        data.store.car[rows],
        data.car_labels,
        list(split.tuning_cars),
        list(split.test_cars),
        threshold_rule=cfg.evaluation.threshold_rule,
        n_boot=cfg.evaluation.n_boot,
        seed=cfg.seed,
    )
    metrics = {f"test/{k}": float(v) for k, v in result.metrics.items()}
    metrics["tuning/auroc"] = float(result.tuning_auroc)
    return EvalResult(metrics=metrics, tables={"vehicle_scores": result.scores})
