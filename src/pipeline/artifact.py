"""The model artifact (``schema.MODEL_ARTIFACT`` of a run): weights + the config that rebuilds
them + preprocessing, no pickled code.

Saved as one ``torch.save`` dict of tensors and plain Python values, so :func:`load` can read it
with ``weights_only=True`` whoever handed us the file.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from src.core import schema
from src.core.errors import UserError, first_line
from src.methods import BaselineConfig, method_config, rebuild
from src.models import create_model
from src.quant.state import load_portable_state_dict, portable_state_dict
from src.tracking.mlflow_run import TrackedRun
from src.tracking.store import RunStore

FORMAT_VERSION = 3  # 3: the method config carries its kind and version


@dataclass
class LoadedModel:
    """A rebuilt model (eval mode) and what was saved with it (normaliser, channels, ...)."""

    model: nn.Module
    extras: dict


def save_model(
    path: str | Path, model: nn.Module, builder: str, extras: dict, method: dict | None = None
) -> Path:
    """Write the artifact atomically (a crash never leaves a half-written ``model.pt``).

    ``method`` (``MethodConfig.to_dict()``: kind, version and fields) says how to rebuild the
    compressed structure around a fresh ``builder`` model before the weights are loaded.
    """
    path = Path(path)
    payload = {
        "format": FORMAT_VERSION,
        "builder": builder,
        "kwargs": model.export_config(),
        "method": method or BaselineConfig().to_dict(),
        "state_dict": portable_state_dict(model),
        "extras": extras,
    }
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


class BrokenArtifact(UserError):
    """A model file that cannot be what :func:`save_model` wrote: truncated, corrupt, tampered
    with, or not weights-only. The message names the file (and the run) and the fix."""


def load_model_file(path: str | Path) -> LoadedModel:
    """Rebuild a model from an artifact file (``weights_only=True``: no code runs).

    Raises:
        BrokenArtifact: The file is truncated, corrupt, of another format, or holds anything
            but tensors and plain values (it is never unpickled with code).
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's message suggests weights_only=False: never
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        holds = f"it holds {found.group(1)}, not only tensors" if found else "it is corrupt"
        raise BrokenArtifact(
            f"{path} is not a weights-only model file ({holds}); it was not written by this "
            "project or was damaged, and is not loaded"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise BrokenArtifact(f"{path} is truncated or corrupt ({first_line(err, 200)})") from None
    if not isinstance(payload, dict) or payload.get("format") not in (2, FORMAT_VERSION):
        raise BrokenArtifact(f"{path} is not a model artifact of format {FORMAT_VERSION}")
    try:
        method = method_config(_method_values(payload))
        model = rebuild(create_model(payload["builder"], **payload["kwargs"]).eval(), method)
        load_portable_state_dict(model, payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = first_line(err, 200)
        raise BrokenArtifact(f"{path} does not rebuild its model ({reason})") from None
    return LoadedModel(model.eval(), {**payload["extras"], "method": payload["method"]})


def _method_values(payload: dict) -> dict:
    """The method config of an artifact; format 2 (before kinds) is read the way it was meant:
    ``fp16``/``bf16`` were half configs, a ``steps`` list a chain, prune's ``steps`` its rounds."""
    values = dict(payload["method"])
    if payload["format"] != 2:
        return values
    if values.get("name") in ("fp16", "bf16"):
        return {**values, "kind": "half", "dtype": values["name"]}
    if isinstance(values.get("steps"), list):
        steps = [_method_values({"format": 2, "method": s}) for s in values["steps"]]
        return {**values, "kind": "chain", "steps": steps}
    if values.get("name") == "prune" and "steps" in values:
        values["rounds"] = values.pop("steps")
    return values


def log_model(
    run: TrackedRun, model: nn.Module, builder: str, extras: dict, method: dict | None = None
) -> None:
    """Save the artifact and attach it to ``run`` under ``model/``."""
    artifact = Path(schema.MODEL_ARTIFACT)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / artifact.name, model, builder, extras, method)
        run.log_artifact(path, str(artifact.parent))


def load(run_id: str, tracking_uri: str | None = None) -> LoadedModel:
    """Restore the model logged by run ``run_id``.

    Example:
        >>> loaded = load("3f2a...")  # doctest: +SKIP
        >>> loaded.model, loaded.extras["normalizer"]
    """
    store = RunStore.open(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = store.download(run_id, schema.MODEL_ARTIFACT, tmp)
        try:
            return load_model_file(path)
        except BrokenArtifact as err:
            named = f"the artifact {schema.MODEL_ARTIFACT} of run {run_id}"
            named = str(err).replace(str(path), named)
            raise BrokenArtifact(named) from None
