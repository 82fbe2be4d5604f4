"""A shipped variant opened for answering: the weights rebuilt from the model file (weights only,
no pickled code), run in the runtime it was shipped in, and the task's answer around it.

Nothing here reads a Hydra config or imports ``src.train``: what a run decided (its ``h`` and
threshold, the registered name and version) comes in ``config``, a plain dict that MLflow keeps
in the model's ``MLmodel`` file (``model_config``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from src.core import schema
from src.pipeline.artifact import load_model_file
from src.serve import anomaly, images

WEIGHTS, ONNX = "weights", "onnx"  # the model's artifacts: model.pt, and model.onnx for ORT
IDENTITY = ("name", "version", "variant", "runtime")  # answer columns that say who answered


@dataclass
class ServedVariant:
    """A variant ready to answer requests.

    Attributes:
        module: The model in its runtime (an ONNX Runtime session behind the eager interface, or
            the eager model itself).
        extras: What the model file holds beside the weights (task, normaliser, channels ...).
        config: The shipped facts: name, version, variant, runtime, and the task's figures
            (``h`` and ``threshold`` for a vehicle model).
    """

    module: nn.Module
    extras: dict
    config: dict

    def answer(self, request, mixed: bool = False) -> pd.DataFrame:
        """The task's answer to ``request``, with the model's name, version, variant and runtime
        in every row (``mixed``: vehicles batched together, see
        :func:`src.serve.anomaly.vehicle_answers`). Raises the task's ``InputError`` for a
        malformed request."""
        with torch.inference_mode():
            if self.extras["task"] == "anomaly":
                rule = anomaly.VehicleRule.from_extras(
                    self.extras, self.config["h"], self.config["threshold"]
                )
                out = anomaly.vehicle_answers(self.module, request, rule, mixed)
            else:
                out = images.image_answers(self.module, request, self.extras, mixed)
        for key in IDENTITY:
            out[key] = str(self.config[key])
        return out


def open_variant(artifacts: dict[str, str], config: dict) -> ServedVariant:
    """Rebuild the model from ``artifacts[WEIGHTS]`` and put it in ``config["runtime"]``."""
    loaded = load_model_file(artifacts[WEIGHTS])
    module = loaded.model.eval()
    if config["runtime"] == "onnxruntime":
        module = _ort(Path(artifacts[ONNX]), module, _example(loaded.extras))
    elif config["runtime"] != schema.EAGER:
        raise ValueError(
            f"runtime {config['runtime']!r} is not servable; ship eager or onnxruntime"
        )
    return ServedVariant(module, loaded.extras, config)


def _example(extras: dict) -> torch.Tensor:
    """One input of the model's shape: what fixes the ONNX outputs' structure."""
    if extras["task"] == "anomaly":
        return torch.zeros(1, anomaly.SNIPPET_LENGTH, len(extras["channels"]))
    size = int(extras["image_size"])
    return torch.zeros(1, len(extras["mean"]), size, size)


def _ort(path: Path, eager: nn.Module, example: torch.Tensor) -> nn.Module:
    """The shipped ONNX file in an ONNX Runtime session, behind the eager model's interface."""
    from src.runtimes.onnxruntime.session import OrtModel, OrtModule

    return OrtModule(OrtModel(path), eager, example)
