"""Task families. A task module provides ``build_module(model, cfg)`` (a LightningModule) and
``evaluate(model, data, cfg) -> EvalResult``; the entry point looks it up by ``data.task``."""

from __future__ import annotations

import importlib
from types import ModuleType

from src.errors import ConfigError

TASKS = {"anomaly": "src.tasks.anomaly", "classification": "src.tasks.classification"}


def get_task(name: str) -> ModuleType:
    """The task module registered as ``name``."""
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}; choose from {sorted(TASKS)}")
    return importlib.import_module(TASKS[name])
