"""``classification`` task: cross-entropy training; accuracy and macro-F1 on the test split.

The test split is touched once, after training; the validation split (carved from training data)
gives the curves Lightning logs each epoch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from src.models.util import input_dtype
from src.tasks.base import EvalResult, adamw_cosine, optim_kwargs


class ClassificationModule(pl.LightningModule):
    """Cross-entropy training with AdamW and a per-epoch cosine schedule.

    Args:
        model: Module mapping images to logits.
        lr: Learning rate.
        weight_decay: AdamW weight decay (0 makes it Adam).
        cosine_factor: ``eta_min = cosine_factor * lr``.
        max_epochs: Period of the cosine schedule.
        extra_loss: Optional module ``extra_loss(x, logits) -> {name: tensor, "total": tensor}``
            added to the training loss (distillation); its parts are logged.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        weight_decay: float = 0.0,
        cosine_factor: float = 1.0,
        max_epochs: int = 1,
        extra_loss: nn.Module | None = None,
    ):
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay
        self.extra_loss = extra_loss
        self.cosine_factor, self.max_epochs = cosine_factor, max_epochs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: dict, split: str) -> torch.Tensor:
        logits = self.model(batch["x"])
        loss = F.cross_entropy(logits, batch["y"])
        acc = (logits.argmax(dim=1) == batch["y"]).float().mean()
        on_step = split == "train"
        extra = {}
        if on_step and self.extra_loss is not None:
            extra = self.extra_loss(batch["x"], logits)
            loss = loss + extra.pop("total")
        self.log_dict(
            {
                f"{split}/loss": loss,
                f"{split}/accuracy": acc,
                **{f"{split}/{k}": v for k, v in extra.items()},
            },
            on_step=on_step,
            on_epoch=True,
            batch_size=len(batch["y"]),
        )
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("loss", loss, prog_bar=True, logger=False, on_step=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        return adamw_cosine(
            self.parameters(), self.lr, self.weight_decay, self.cosine_factor, self.max_epochs
        )


def build_module(model: nn.Module, cfg, extra_loss: nn.Module | None = None):
    """The LightningModule for ``model`` from the composed config (plus an optional extra loss)."""
    return ClassificationModule(
        model,
        **optim_kwargs(cfg),
        extra_loss=extra_loss,
    )


@torch.inference_mode()
def predict(model: nn.Module, loader) -> tuple[np.ndarray, np.ndarray, float]:
    """Predicted classes, true labels and mean cross-entropy over ``loader`` (eval mode)."""
    was_training, dtype = model.training, input_dtype(model)
    model.eval()
    preds, labels, loss_sum = [], [], 0.0
    try:
        for batch in loader:
            logits = model(batch["x"].to(dtype)).float()
            loss_sum += F.cross_entropy(logits, batch["y"], reduction="sum").item()
            preds.append(logits.argmax(dim=1).numpy())
            labels.append(batch["y"].numpy())
    finally:
        model.train(was_training)
    y = np.concatenate(labels)
    return np.concatenate(preds), y, loss_sum / len(y)


def per_class_table(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Accuracy of each class on the test split (how errors spread, not just how many)."""
    rows = [
        {
            "class": i,
            "name": name,
            "n": int((y == i).sum()),
            "accuracy": float((pred[y == i] == i).mean()) if (y == i).any() else float("nan"),
        }
        for i, name in enumerate(classes)
    ]
    return pd.DataFrame(rows)


def evaluate(model: nn.Module, data, cfg) -> EvalResult:
    """Test accuracy, macro-F1 and loss (validation curves come from Lightning during fit)."""
    pred, y, loss = predict(model, data.test_dataloader())
    metrics = {
        "test/accuracy": float(accuracy_score(y, pred)),
        "test/f1_macro": float(f1_score(y, pred, average="macro")),
        "test/loss": loss,
        "test/n_samples": float(len(y)),
    }
    table = per_class_table(pred, y, data.splits.classes)
    return EvalResult(metrics=metrics, tables={"per_class_accuracy": table})
