"""``anomaly`` task: one-class training of DyAD and vehicle-level scoring.

Training uses the reference loss; scoring uses per-snippet MSE of the predicted responses (the
reference trains with SmoothL1 but scores with MSE), aggregated per vehicle with h and the
threshold chosen on the tuning vehicles only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.core.metrics import MetricSpec
from src.core.progress import progress
from src.models.util import input_dtype
from src.stats import delong_paired, snippet_change, vehicle_fidelity
from src.tasks.anomaly.loss import AnomalyModule, DyadLoss, ResponseDistillLoss
from src.tasks.anomaly.vehicle import THRESHOLD_RULES, choose_h, evaluate_vehicles
from src.tasks.base import TASKS, EvalResult, OptimSpec, Task, aligned

THRESHOLD = f"{schema.TEST}threshold"  # the threshold chosen on tuning vehicles (evaluate)


@dataclass(frozen=True)
class VehicleProtocol:
    """How vehicles are scored (``task.evaluation``).

    Attributes:
        threshold_rule: ``normal_max`` (car-level: flag a car scoring above every normal
            tuning vehicle, which bounds false alarms), ``youden`` (car-level: the best TPR -
            FPR on the tuning vehicles) or ``reference`` (the DyAD notebooks' snippet-level cut,
            kept to reproduce them: it compares a snippet error with car scores and flags almost
            no car); all are chosen on tuning vehicles only.
        n_boot: Bootstrap resamples of the test vehicles for the AUROC interval (0: none).
    """

    threshold_rule: str = "normal_max"
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ConfigError(
                f"task.evaluation.threshold_rule={self.threshold_rule!r}; choose one of "
                f"{list(THRESHOLD_RULES)}"
            )
        if int(self.n_boot) < 0:
            raise ConfigError(f"task.evaluation.n_boot={self.n_boot} must be >= 0")


@TASKS.register("anomaly")
@dataclass(frozen=True)
class AnomalyTask(Task):
    """DyAD-style fault detection, scored per vehicle (AUROC primary).

    Attributes:
        loss: The reference loss weights and KL annealing (``task.loss``).
        evaluation: The vehicle protocol (``task.evaluation``).
    """

    loss: DyadLoss = field(default_factory=DyadLoss)
    evaluation: VehicleProtocol = field(default_factory=VehicleProtocol)

    name: ClassVar[str] = "anomaly"
    fidelity_tables: ClassVar[tuple[str, ...]] = (
        schema.VEHICLE_SCORES_TABLE,
        schema.SNIPPET_ERRORS_TABLE,
    )
    primary: ClassVar[str] = "test/auroc"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("test/auroc", True, ".3f", headline=True, paired="auroc", margin=0.02),
        MetricSpec("test/recall", True, ".3f", headline=True),
        MetricSpec("test/false_alarm_rate", False, ".3f", headline=True),
        MetricSpec("test/f1", True, ".3f", headline=True),
        MetricSpec("test/precision", True, ".3f"),
        MetricSpec("test/auroc_mean", True, ".3f"),
        *(MetricSpec(end, True, ".3f") for end in schema.interval("test/auroc")),
    )

    def __post_init__(self) -> None:
        # The config hands plain mappings; the fields are typed, validated settings.
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", DyadLoss(**self.loss))
        if isinstance(self.evaluation, dict):
            object.__setattr__(self, "evaluation", VehicleProtocol(**self.evaluation))

    def build_module(self, model, optim: OptimSpec, epochs: int, extra_loss=None) -> AnomalyModule:
        return AnomalyModule(model, self.loss, optim, max_epochs=epochs, extra_loss=extra_loss)

    def evaluate(self, model: nn.Module, data, seed: int) -> EvalResult:
        """Score tuning and test vehicles; h and the threshold come from the tuning vehicles.
        Tables: every vehicle's score and every scored snippet's error (what :meth:`fidelity`
        compares, about 150 KB as CSV on the default data)."""
        split = data.split
        loader = data.score_dataloader(split.tuning_cars + split.test_cars)
        errors, rows = snippet_errors(model, loader)
        result = evaluate_vehicles(
            errors,
            data.store.car[rows],
            data.car_labels,
            list(split.tuning_cars),
            list(split.test_cars),
            threshold_rule=self.evaluation.threshold_rule,
            n_boot=int(self.evaluation.n_boot),
            seed=seed,
        )
        metrics = {f"test/{k}": float(v) for k, v in result.metrics.items()}
        metrics[self.tuning_primary] = float(result.tuning_auroc)
        test = result.scores[result.scores.role == "test"]
        units = pd.DataFrame(
            {
                "unit": test.car.to_numpy(),
                "label": test.label.to_numpy(),
                "value": test.robust_score.to_numpy(),
            }
        )
        snippets = pd.DataFrame(
            {"row": rows, "car": data.store.car[rows], "error": errors.astype(np.float32)}
        )
        tables = {schema.VEHICLE_SCORES_TABLE: result.scores, schema.SNIPPET_ERRORS_TABLE: snippets}
        return EvalResult(metrics, tables, units)

    def fidelity(self, variant: EvalResult, baseline: EvalResult, seed: int) -> dict[str, float]:
        """Vehicle flips, rank agreement and margin shift over every tuning and test vehicle;
        McNemar on the test vehicles; the snippet error change over every scored snippet."""
        results = (baseline, variant)
        if any(
            schema.VEHICLE_SCORES_TABLE not in r.tables or THRESHOLD not in r.metrics
            for r in results
        ):
            return {}
        cars = aligned(*(r.tables[schema.VEHICLE_SCORES_TABLE] for r in results), "car")
        if cars.empty:
            return {}
        metrics = vehicle_fidelity(
            cars.robust_score_b.to_numpy(float),
            cars.robust_score_v.to_numpy(float),
            baseline.metrics[THRESHOLD],
            variant.metrics[THRESHOLD],
            labels=cars.label_b.to_numpy(int),
            is_test=(cars.role_b == "test").to_numpy(),
        )
        if all(schema.SNIPPET_ERRORS_TABLE in r.tables for r in results):
            snippets = aligned(*(r.tables[schema.SNIPPET_ERRORS_TABLE] for r in results), "row")
            # as scored (float32): a logged baseline's errors compare exactly with fresh ones
            errors = [snippets[f"error_{s}"].to_numpy(np.float32) for s in "bv"]
            metrics.update(
                snippet_change(*errors, snippets.car_b.astype(str).to_numpy(), seed=seed)
            )
        return metrics

    def tune(self, model: nn.Module, data, seed: int, subsample: int | None = None) -> dict:
        """Tuning vehicles only: the car-level AUROC at the best ``h`` (as :meth:`evaluate`
        chooses it) and the mean snippet error; ``subsample``: snippets per vehicle."""
        cars = list(data.split.tuning_cars)
        errors, rows = snippet_errors(model, data.score_dataloader(cars, per_car=subsample))
        _, auroc = choose_h(errors, data.store.car[rows], data.car_labels)
        return {self.tuning_primary: float(auroc), schema.TUNING_LOSS: float(errors.mean())}

    def paired_p_value(self, table: pd.DataFrame) -> float:
        """DeLong's test of the two AUROCs on the same vehicles."""
        return delong_paired(table.label, table.baseline, table.variant).p_value

    def distill_loss(self, teacher, student, alpha, temperature, beta) -> ResponseDistillLoss:
        return ResponseDistillLoss(teacher, alpha, beta, student.config.latent_size)


@torch.inference_mode()
def snippet_errors(model: nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """Per-snippet MSE of the predicted responses (eval mode, z = mean), with snippet rows."""
    was_training, dtype = model.training, input_dtype(model)
    model.eval()
    errors, rows = [], []
    try:
        for batch in progress(loader, "scoring snippets"):
            x = batch["x"]
            out = model(x.to(dtype))
            err = (out.prediction.float() - model.split_target(x)).pow(2).mean(dim=(1, 2))
            errors.append(err.numpy())
            rows.append(batch["row"].numpy())
    finally:
        model.train(was_training)
    return np.concatenate(errors), np.concatenate(rows)
