"""What a task family is: its metrics, its training module, its evaluation, its distillation loss.

A :class:`Task` is a frozen dataclass of the task's own settings (the ``task`` config group:
loss weights, evaluation protocol), registered by name. Everything above asks the task object and
never branches on the task's name.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.core.metrics import MetricSpec
from src.core.registry import Registry
from src.stats import PairedCell, PairedEstimate, paired_difference


@dataclass
class EvalResult:
    """Metrics named ``area/name`` (e.g. ``test/auroc``) and tables saved as CSV artifacts.

    ``units`` holds one row per test unit (vehicle, image): ``unit``, ``label`` and ``value``
    (the model's score, or 1/0 for a right/wrong answer), so that a variant can be compared with
    its baseline unit by unit (:meth:`Task.paired`).
    """

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    units: pd.DataFrame | None = None


@dataclass(frozen=True)
class OptimSpec:
    """AdamW with a per-epoch cosine schedule down to ``cosine_factor * lr`` (DyAD's recipe).

    Attributes:
        lr: Learning rate.
        weight_decay: AdamW weight decay (0 makes it Adam).
        cosine_factor: ``eta_min = cosine_factor * lr`` (1: constant rate).
    """

    lr: float
    weight_decay: float = 0.0
    cosine_factor: float = 1.0

    def __post_init__(self) -> None:
        for key in ("lr", "weight_decay", "cosine_factor"):
            value = getattr(self, key)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"optim.{key}={value!r} must be a number, e.g. 1e-3") from None
            if not math.isfinite(number):
                raise ConfigError(f"optim.{key}={value!r} must be a finite number, e.g. 1e-3")
        if not float(self.lr) > 0:
            raise ConfigError(f"optim.lr={self.lr} must be > 0")
        if float(self.weight_decay) < 0 or not 0 <= float(self.cosine_factor) <= 1:
            raise ConfigError("optim.weight_decay must be >= 0 and optim.cosine_factor in [0, 1]")


def adamw_cosine(parameters, optim: OptimSpec, epochs: int):
    """Lightning's ``configure_optimizers`` value for :class:`OptimSpec` over ``epochs``."""
    optimizer = torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs), eta_min=optim.cosine_factor * optim.lr
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class TeacherLoss(nn.Module):
    """Base of the tasks' distillation losses: the teacher is kept out of the module tree, so it
    is neither trained, nor moved to train mode, nor saved with the student."""

    def __init__(self, teacher: nn.Module, alpha: float) -> None:
        super().__init__()
        self._teacher = (teacher.eval(),)
        self.alpha = alpha

    def teacher_output(self, x: torch.Tensor):
        teacher = self._teacher[0].eval()
        with torch.no_grad():
            return teacher(x)


class Task(ABC):
    """A task family. Subclasses are frozen dataclasses whose fields are the task's settings.

    Class attributes:
        name: The registered name (``anomaly``, ``classification``).
        metrics: Specs of the test metrics ``evaluate`` returns.
        primary: The metric that ranks variants.
        fidelity_tables: The :attr:`EvalResult.tables` that :meth:`fidelity` reads.
    """

    name: ClassVar[str]
    metrics: ClassVar[tuple[MetricSpec, ...]]
    primary: ClassVar[str]
    fidelity_tables: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def build_module(
        self,
        model: nn.Module,
        optim: OptimSpec,
        epochs: int,
        extra_loss: nn.Module | None = None,
    ) -> pl.LightningModule:
        """The LightningModule that trains ``model`` with the task loss (plus ``extra_loss``, a
        module ``extra_loss(x, output) -> {name: tensor, "total": tensor}``) for ``epochs``."""

    @abstractmethod
    def evaluate(self, model: nn.Module, data, seed: int) -> EvalResult:
        """Test metrics (``test/*``, every one of :attr:`metrics`) and tables of ``model``."""

    @abstractmethod
    def tune(
        self, model: nn.Module, data, seed: int, subsample: int | None = None
    ) -> dict[str, float]:
        """Figures on the tuning split only, never the test split: what a method or a search
        may select on. ``tuning/<primary's name>`` (:attr:`tuning_primary`) and ``tuning/loss``
        (the task's scoring loss, lower is better). ``subsample``: a quicker, coarser look (at
        most that many snippets per vehicle, or images)."""

    @property
    def tuning_primary(self) -> str:
        """``tuning/auroc`` for ``test/auroc``: the primary metric on the tuning split."""
        return schema.tuning_of(self.primary)

    @abstractmethod
    def distill_loss(
        self, teacher: nn.Module, student: nn.Module, alpha: float, temperature: float, beta: float
    ) -> TeacherLoss:
        """The extra loss that distils ``teacher`` into ``student`` (``alpha`` weights it)."""

    def paired(self, variant: EvalResult, baseline: EvalResult, seed: int, n_boot: int = 2000):
        """The variant against its baseline on the same test units, and the paired per-unit table
        the leaderboard recombines over folds and seeds.

        Metrics (names from :func:`src.core.schema.paired_metric`, for ``delta/<primary>``):
        ``_ci_low``/``_ci_high``, the calibrated one-cell interval of :func:`paired_difference`
        (DeLong-t for AUROC, an adjusted Wald for accuracy); ``_p_ni``, its one-sided
        non-inferiority p-value at the primary metric's margin (nan when no pair changed);
        ``_p``, the task's two-sided *superiority* test of no difference (:meth:`paired_p_value`);
        and the discordance counts ``_pairs_worse``, ``_pairs_better``, ``_pairs_total``,
        ``_units_moved``.

        Returns:
            ``(metrics, table, tags)``: tags name the interval (``schema.INTERVAL_METHOD``); all
            empty (table None) when either result has no units.
        """
        if variant.units is None or baseline.units is None:
            return {}, None, {}
        # Unit ids as text: a baseline's units may come back from its logged table.
        base, var = (u.astype({"unit": str, "label": int}) for u in (baseline.units, variant.units))
        table = base.merge(var, on=["unit", "label"], suffixes=("_b", "_v"))
        table = table.rename(columns={"value_b": "baseline", "value_v": "variant"})
        spec = self.metric(self.primary)
        cell = PairedCell(*(table[c].to_numpy() for c in ("unit", "label", "baseline", "variant")))
        estimate = paired_difference(
            [cell],
            spec.paired,
            n_boot=n_boot,
            seed=seed,
            margin=spec.margin,
            higher_is_better=spec.higher_is_better,
        )
        return (
            self._paired_metrics(estimate, table),
            table,
            {schema.INTERVAL_METHOD: estimate.method},
        )

    def _paired_metrics(self, estimate: PairedEstimate, table: pd.DataFrame) -> dict[str, float]:
        delta = schema.delta_of(self.primary)
        low, high = schema.interval(delta)
        changed = estimate.discordance
        values = {
            "p": self.paired_p_value(table),
            "p_ni": estimate.p_ni,
            "pairs_worse": changed.worse,
            "pairs_better": changed.better,
            "pairs_total": changed.total,
            "units_moved": changed.units_moved,
        }
        named = {schema.paired_metric(delta, k): float(v) for k, v in values.items()}
        return {low: estimate.ci_low, high: estimate.ci_high, **named}

    @abstractmethod
    def fidelity(self, variant: EvalResult, baseline: EvalResult, seed: int) -> dict[str, float]:
        """How closely the variant answers like its baseline, label-free, on every unit the two
        results share (``fidelity/*``: flips with their bound, agreement, shifts); see
        :mod:`src.stats.fidelity`. Empty when either result lacks the tables it needs (a
        baseline logged before them): the run goes on without them.

        The tables it reads are :attr:`fidelity_tables`, which a reused baseline reads back."""

    @abstractmethod
    def paired_p_value(self, table: pd.DataFrame) -> float:
        """Two-sided p-value of *no difference* (a superiority test, not non-inferiority)
        between the table's ``baseline`` and ``variant``."""

    def metric(self, name: str) -> MetricSpec | None:
        """The spec of metric ``name``, None when the task does not declare it."""
        return next((m for m in self.metrics if m.name == name), None)


def aligned(baseline: pd.DataFrame, variant: pd.DataFrame, key: str) -> pd.DataFrame:
    """The two models' rows of the same units, joined on ``key`` (compared as text: a reused
    baseline's table comes back from CSV); the other columns end in ``_b`` and ``_v``."""
    base, var = (t.astype({key: str}) for t in (baseline, variant))
    return base.merge(var, on=key, suffixes=("_b", "_v"))


TASKS: Registry[type[Task]] = Registry("task")


def create_task(values: dict) -> Task:
    """The task named ``values["name"]`` with the rest of ``values`` as its settings.

    Raises:
        ConfigError: Unknown task or setting (the message lists the known ones).
    """
    values = dict(values)
    cls = TASKS.get(values.pop("name"))
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"task {cls.name!r} has no key(s) {unknown}; its keys are {sorted(known)}"
        )
    return cls(**values)
