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
from src.stats.fidelity import spearman
from src.stats.separation import median_log_shift, soft_auroc
from src.tasks.anomaly.loss import AnomalyModule, DyadLoss, ResponseDistillLoss
from src.tasks.anomaly.thresholds import fewest_calibration_cars
from src.tasks.anomaly.vehicle import THRESHOLD_RULES, choose_h, evaluate_vehicles
from src.tasks.base import TASKS, EvalResult, OptimSpec, Task, aligned

THRESHOLD = f"{schema.TEST}threshold"  # the threshold chosen on tuning vehicles (evaluate)


@dataclass(frozen=True)
class VehicleProtocol:
    """How vehicles are scored (``task.evaluation``).

    Attributes:
        threshold_rule: ``conformal`` (the default: the ``ceil((1 - alpha)(n + 1))``-th smallest
            score of ``n`` normal cars held out of training, so a test normal car is flagged
            with probability at most ``alpha``), ``normal_max`` (the paper's protocol: above
            every normal tuning car, the training cars scored in-sample, so no level is
            claimed; nothing held out), ``youden`` (the best TPR - FPR on the tuning vehicles)
            or ``reference`` (the DyAD notebooks' snippet-level cut, kept to reproduce them: it
            compares a snippet error with car scores and flags almost no car). h is chosen on
            the tuning vehicles, and no rule reads a test vehicle.
        alpha: ``conformal``'s false-alarm level, in (0, 1).
        calibration_normals: ``conformal`` only: the fold's normal training cars held out of
            training (and of the choice of h) to place the threshold: a count (an int >= 1)
            or a share of the fold's training normals (a float in (0, 1)). At least
            ``(1 - alpha) / alpha`` cars are needed to flag anything (19 at 0.05).
        n_boot: Bootstrap resamples of the test vehicles for the AUROC interval (0: none).
    """

    threshold_rule: str = "conformal"
    alpha: float = 0.05
    calibration_normals: float = 0.4
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ConfigError(
                f"task.evaluation.threshold_rule={self.threshold_rule!r}; choose one of "
                f"{list(THRESHOLD_RULES)}"
            )
        n_boot = self.n_boot
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
            raise ConfigError(f"task.evaluation.n_boot={n_boot!r} must be an int >= 0")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ConfigError(f"task.evaluation.alpha={alpha!r} must be a number in (0, 1)")
        if self.threshold_rule == "conformal":
            _check_calibration(self.calibration_normals, alpha)

    @property
    def held_out_normals(self) -> float:
        """Normal training cars the data must hold out of training (0: none, the paper's)."""
        return self.calibration_normals if self.threshold_rule == "conformal" else 0


def _check_calibration(value, alpha: float) -> None:
    key = f"task.evaluation.calibration_normals={value!r}"
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{key}: the conformal rule needs a count >= 1 or a share in (0, 1)")
    if not whole and value > 1:
        raise ConfigError(f"{key}: a share must be in (0, 1), a count a whole number")
    if whole and value < fewest_calibration_cars(alpha):
        raise ConfigError(
            f"{key} cannot flag any car at task.evaluation.alpha={alpha}: hold out at least "
            f"{fewest_calibration_cars(alpha)} normal cars, or raise alpha to "
            f"{1 / (int(value) + 1):.3g} or more"
        )


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
        # Clopper-Pearson intervals of the operating point (whole cars: steps of 1/n).
        *(MetricSpec(end, True, ".3f") for end in schema.interval("test/recall")),
        *(MetricSpec(end, False, ".3f") for end in schema.interval("test/false_alarm_rate")),
    )

    def __post_init__(self) -> None:
        # The config hands plain mappings; the fields are typed, validated settings.
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", DyadLoss(**self.loss))
        if isinstance(self.evaluation, dict):
            object.__setattr__(self, "evaluation", VehicleProtocol(**self.evaluation))

    @property
    def held_out_normals(self) -> float:
        """Normal training cars the data holds out of training for the threshold (a count or a
        share; 0: none). The entry point hands it to the data (``src.cli.specs``)."""
        return self.evaluation.held_out_normals

    def build_module(self, model, optim: OptimSpec, epochs: int, extra_loss=None) -> AnomalyModule:
        return AnomalyModule(model, self.loss, optim, max_epochs=epochs, extra_loss=extra_loss)

    def evaluate(self, model: nn.Module, data, seed: int) -> EvalResult:
        """Score tuning, calibration and test vehicles; h comes from the tuning vehicles, the
        threshold from the tuning (``conformal``: the calibration) vehicles. Tables: every
        vehicle's score and every scored snippet's error (what :meth:`fidelity` compares, about
        150 KB as CSV on the default data)."""
        split = data.split
        if self.evaluation.threshold_rule == "conformal" and not split.calibration_cars:
            raise ConfigError(
                "task.evaluation.threshold_rule=conformal, but the data holds no normal car out "
                "of training; build it with calibration_normals=task.held_out_normals (as "
                "src.cli.specs.data_settings does), or choose threshold_rule=normal_max"
            )
        loader = data.score_dataloader(split.tuning_cars + split.calibration_cars + split.test_cars)
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
            calibration_cars=list(split.calibration_cars),
            alpha=float(self.evaluation.alpha),
        )
        metrics = {f"test/{k}": float(v) for k, v in result.metrics.items()}
        metrics.update(tuning_figures(result.scores, errors, data.store.car[rows]))
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
        scores = [cars[f"robust_score_{s}"].to_numpy(float) for s in "bv"]
        thresholds = [r.metrics[THRESHOLD] for r in results]
        metrics = vehicle_fidelity(
            *scores,
            *thresholds,
            labels=cars.label_b.to_numpy(int),
            is_test=(cars.role_b == "test").to_numpy(),
        )
        tuning = [s[(cars.role_b == "tuning").to_numpy()] for s in scores]
        metrics[schema.TUNING_SHIFT] = median_log_shift(*tuning)
        metrics[schema.TUNING_RANK_CHANGE] = 1.0 - spearman(*tuning)
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


def tuning_figures(scores: pd.DataFrame, errors: np.ndarray, cars: np.ndarray) -> dict:
    """What a search may select on: the tuning vehicles' soft AUROC (``scores``: the vehicle
    table, at the chosen h) and the mean error of their snippets (``errors`` of ``cars``)."""
    tuning = scores[scores.role == "tuning"]
    mask = np.isin(cars, tuning.car.to_numpy())
    return {
        schema.TUNING_SEPARATION: soft_auroc(tuning.robust_score.to_numpy(float), tuning.label),
        schema.TUNING_LOSS: float(errors[mask].mean()) if mask.any() else float("nan"),
    }


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
