"""What every task family returns from evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch


@dataclass
class EvalResult:
    """Metrics named ``area/name`` (e.g. ``test/auroc``) and tables saved as CSV artifacts."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def adamw_cosine(parameters, lr: float, weight_decay: float, cosine_factor: float, epochs: int):
    """AdamW with a per-epoch cosine schedule down to ``cosine_factor * lr`` (DyAD's recipe)."""
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs), eta_min=cosine_factor * lr
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def optim_kwargs(cfg) -> dict:
    """The optimiser and schedule settings every task module takes from the composed config."""
    return {
        "lr": cfg.optim.lr,
        "weight_decay": cfg.optim.weight_decay,
        "cosine_factor": cfg.optim.cosine_factor,
        "max_epochs": cfg.trainer.max_epochs,
    }
