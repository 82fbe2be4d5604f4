"""The model artifact: weights + the config that rebuilds them + preprocessing, no pickled code.

Saved as one ``torch.save`` dict of tensors and plain Python values, so :func:`load` can read it
with ``weights_only=True`` whoever handed us the file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient
from torch import nn

from src.models import create_model
from src.tracking.mlflow_run import TrackedRun, default_tracking_uri

MODEL_ARTIFACT = "model/model.pt"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A rebuilt model (eval mode) and what was saved with it (normaliser, channels, ...)."""

    model: nn.Module
    extras: dict


def save_model(path: str | Path, model: nn.Module, builder: str, extras: dict) -> Path:
    """Write the artifact atomically (a crash never leaves a half-written ``model.pt``)."""
    path = Path(path)
    payload = {
        "format": FORMAT_VERSION,
        "builder": builder,
        "kwargs": model.export_config(),
        "state_dict": model.state_dict(),
        "extras": extras,
    }
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_model_file(path: str | Path) -> LoadedModel:
    """Rebuild a model from an artifact file (``weights_only=True``: no code runs)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a model artifact of format {FORMAT_VERSION}")
    model = create_model(payload["builder"], **payload["kwargs"])
    model.load_state_dict(payload["state_dict"])
    return LoadedModel(model.eval(), payload["extras"])


def log_model(run: TrackedRun, model: nn.Module, builder: str, extras: dict) -> None:
    """Save the artifact and attach it to ``run`` under ``model/``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / Path(MODEL_ARTIFACT).name, model, builder, extras)
        run.log_artifact(path, str(Path(MODEL_ARTIFACT).parent))


def load(run_id: str, tracking_uri: str | None = None) -> LoadedModel:
    """Restore the model logged by run ``run_id``.

    Example:
        >>> loaded = load("3f2a...")  # doctest: +SKIP
        >>> loaded.model, loaded.extras["normalizer"]
    """
    client = MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, MODEL_ARTIFACT, tmp)
        return load_model_file(local)
