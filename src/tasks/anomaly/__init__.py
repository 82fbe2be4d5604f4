"""The ``anomaly`` task family: DyAD training and vehicle-level fault detection."""

from src.tasks.anomaly.loss import AnomalyModule, DyadLoss, ResponseDistillLoss
from src.tasks.anomaly.task import AnomalyTask, VehicleProtocol, snippet_errors

__all__ = [
    "AnomalyModule",
    "AnomalyTask",
    "DyadLoss",
    "ResponseDistillLoss",
    "VehicleProtocol",
    "snippet_errors",
]
