"""``classification`` task: cross-entropy training; accuracy and macro-F1 on the test split.

The test split is touched once, after training; the validation split (carved from training data)
gives the curves Lightning logs each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import ClassVar

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from src.core import schema
from src.core.metrics import MetricSpec
from src.core.progress import progress
from src.models.util import input_dtype
from src.stats import mcnemar_exact, output_fidelity
from src.stats.fidelity import mean_kl
from src.tasks.base import TASKS, EvalResult, OptimSpec, Task, TeacherLoss, adamw_cosine, aligned

LOGP = "logp_"  # logp_<class>: a column of the image outputs table


class ClassificationModule(pl.LightningModule):
    """Cross-entropy training with AdamW and a per-epoch cosine schedule.

    Args:
        model: Module mapping images to logits.
        optim: AdamW (weight decay 0 makes it Adam) and its cosine schedule.
        max_epochs: Period of the cosine schedule.
        extra_loss: Optional module ``extra_loss(x, logits) -> {name: tensor, "total": tensor}``
            added to the training loss (distillation); its parts are logged.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimSpec,
        max_epochs: int = 1,
        extra_loss: nn.Module | None = None,
    ):
        super().__init__()
        self.model, self.optim, self.extra_loss = model, optim, extra_loss
        self.max_epochs = max_epochs

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
            sync_dist=True,  # under DDP the epoch value is every rank's, not rank 0's share
        )
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("loss", loss, prog_bar=True, logger=False, on_step=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        return adamw_cosine(self.parameters(), self.optim, self.max_epochs)


@torch.inference_mode()
def predict(model: nn.Module, loader, log_probs: list | None = None):
    """Predicted classes, true labels and mean cross-entropy over ``loader`` (eval mode);
    ``log_probs``: a list that receives each batch's log-probabilities (float32)."""
    was_training, dtype = model.training, input_dtype(model)
    model.eval()
    preds, labels, loss_sum = [], [], 0.0
    try:
        for batch in progress(loader, "predicting"):
            logits = model(batch["x"].to(dtype)).float()
            loss_sum += F.cross_entropy(logits, batch["y"], reduction="sum").item()
            preds.append(logits.argmax(dim=1).numpy())
            labels.append(batch["y"].numpy())
            if log_probs is not None:
                log_probs.append(F.log_softmax(logits, dim=1).numpy())
    finally:
        model.train(was_training)
    y = np.concatenate(labels)
    return np.concatenate(preds), y, loss_sum / len(y)


def outputs_table(pred: np.ndarray, y: np.ndarray, log_probs: np.ndarray) -> pd.DataFrame:
    """One row per test image: ``unit``, ``label``, ``pred`` and ``logp_<class>`` (float32,
    which CSV gives back exactly): what :meth:`ClassificationTask.fidelity` compares."""
    table = pd.DataFrame(log_probs.astype(np.float32))
    table.columns = [f"{LOGP}{c}" for c in range(log_probs.shape[1])]
    table.insert(0, "pred", pred)
    table.insert(0, "label", y)
    table.insert(0, "unit", np.arange(len(y)))
    return table


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


class SoftLogitLoss(TeacherLoss):
    """Hinton et al.'s distillation: KL divergence of temperature-softened logits, times ``T^2``
    (which keeps its gradients on the scale of the hard-label loss)."""

    def __init__(self, teacher: nn.Module, alpha: float, temperature: float):
        super().__init__(teacher, alpha)
        self.temperature = temperature

    def forward(self, x: torch.Tensor, student_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        t = self.temperature
        log_student = F.log_softmax(student_logits / t, dim=1)
        log_teacher = F.log_softmax(self.teacher_output(x) / t, dim=1)
        kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * t * t
        return {"distill": kl, "total": self.alpha * kl}


@TASKS.register("classification")
@dataclass(frozen=True)
class ClassificationTask(Task):
    """Image classification: cross-entropy training; accuracy (primary) and macro-F1 on the test
    split, touched once after training."""

    name: ClassVar[str] = "classification"
    fidelity_tables: ClassVar[tuple[str, ...]] = (
        schema.IMAGE_OUTPUTS_TABLE,
        schema.TUNING_OUTPUTS_TABLE,
    )
    primary: ClassVar[str] = "test/accuracy"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("test/accuracy", True, ".4f", headline=True, paired="accuracy", margin=0.01),
        MetricSpec("test/f1_macro", True, ".4f", headline=True),
        MetricSpec("test/loss", False, ".4f"),
    )

    def build_module(self, model, optim: OptimSpec, epochs: int, extra_loss=None):
        return ClassificationModule(model, optim, max_epochs=epochs, extra_loss=extra_loss)

    def evaluate(self, model: nn.Module, data, seed: int) -> EvalResult:
        """Test accuracy, macro-F1 and loss, and the validation split's figures (``tune``)."""
        log_probs: list[np.ndarray] = []
        pred, y, loss = predict(model, data.test_dataloader(), log_probs)
        metrics = {
            "test/accuracy": float(accuracy_score(y, pred)),
            "test/f1_macro": float(f1_score(y, pred, average="macro")),
            "test/loss": loss,
            "test/n_samples": float(len(y)),
        }
        tuning, tuning_outputs = self._validation(model, data)  # what a search selects on
        metrics.update(tuning)
        table = per_class_table(pred, y, data.splits.classes)
        units = pd.DataFrame({"unit": np.arange(len(y)), "label": y, "value": (pred == y) * 1})
        outputs = outputs_table(pred, y, np.concatenate(log_probs))
        tables = {
            "per_class_accuracy": table,
            schema.IMAGE_OUTPUTS_TABLE: outputs,
            schema.TUNING_OUTPUTS_TABLE: tuning_outputs,
        }
        return EvalResult(metrics, tables, units)

    def fidelity(self, variant: EvalResult, baseline: EvalResult, seed: int) -> dict[str, float]:
        """Prediction flips, agreement and mean KL(baseline || variant) over the test images,
        and McNemar on their correctness; the mean KL over the validation images (what a
        search minimises, :data:`src.core.schema.TUNING_SHIFT`)."""
        metrics = {}
        test = _aligned_outputs(variant, baseline, schema.IMAGE_OUTPUTS_TABLE)
        if test is not None:
            images, log_probs = test
            metrics = output_fidelity(
                images.pred_b.to_numpy(),
                images.pred_v.to_numpy(),
                *log_probs,
                images.label_b.to_numpy(),
            )
        tuning = _aligned_outputs(variant, baseline, schema.TUNING_OUTPUTS_TABLE)
        if tuning is not None:
            metrics[schema.TUNING_SHIFT] = mean_kl(*tuning[1])
        return metrics

    def tune(self, model: nn.Module, data, seed: int, subsample: int | None = None) -> dict:
        """The validation split (carved from training data): accuracy and mean cross-entropy;
        ``subsample``: at most about that many images (whole batches, in order)."""
        return self._validation(model, data, subsample)[0]

    def _validation(self, model, data, subsample: int | None = None):
        """:meth:`tune`'s figures, the mean probability of the true class
        (:data:`src.core.schema.TUNING_SEPARATION`) and the images' outputs table."""
        loader = data.val_dataloader()
        if subsample is not None:
            loader = list(islice(loader, max(1, -(-int(subsample) // loader.batch_size))))
        log_probs: list[np.ndarray] = []
        pred, y, loss = predict(model, loader, log_probs)
        logp = np.concatenate(log_probs)
        metrics = {
            self.tuning_primary: float(accuracy_score(y, pred)),
            schema.TUNING_LOSS: loss,
            schema.TUNING_SEPARATION: float(np.exp(logp[np.arange(len(y)), y]).mean()),
        }
        return metrics, outputs_table(pred, y, logp)

    def paired_p_value(self, table: pd.DataFrame) -> float:
        """The exact McNemar test on the same test images."""
        return mcnemar_exact(table.baseline, table.variant)

    def distill_loss(self, teacher, student, alpha, temperature, beta) -> SoftLogitLoss:
        return SoftLogitLoss(teacher, alpha, temperature)


def _aligned_outputs(variant: EvalResult, baseline: EvalResult, name: str):
    """The two models' output table ``name`` joined by image, and their log-probabilities
    (float32, as computed: a logged baseline's compare exactly with fresh ones); None when
    either lacks it or their classes differ."""
    if any(name not in r.tables for r in (baseline, variant)):
        return None
    base, var = (r.tables[name] for r in (baseline, variant))
    classes = [c for c in base.columns if c.startswith(LOGP)]
    if classes != [c for c in var.columns if c.startswith(LOGP)]:
        return None
    images = aligned(base, var, "unit")
    if images.empty:
        return None
    return images, [images[[f"{c}_{s}" for c in classes]].to_numpy(np.float32) for s in "bv"]
