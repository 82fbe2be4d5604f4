"""What a run records about itself: name, tags, config, and the key that identifies its
baseline (so a compressed variant can find the fp32 run it must be compared with)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.tracking.mlflow_run import TrackedRun

# Keys that change how a run is executed or logged, not what the baseline model is.
_RUNTIME_KEYS = {
    "model": {"student"},  # distillation's student, not part of the baseline
    "data": {"num_workers", "cache_dir", "cache_workers", "eval_batch_size", "tags"},
    "trainer": {
        "enable_progress_bar",
        "enable_model_summary",
        "log_every_n_steps",
        "accelerator",
        "devices",
    },
}
_BASELINE_GROUPS = ("model", "data", "optim", "trainer", "seed")


def run_name(cfg: DictConfig, method: str) -> str:
    return cfg.get("run_name") or f"{method}-{cfg.model.name}"


def baseline_key(cfg: DictConfig) -> str:
    """Hash of everything that defines the fp32 baseline (model, data, fold, optimiser, epochs,
    seed), and nothing about how it is run or which method follows."""
    defining = {}
    for group in _BASELINE_GROUPS:  # resolved one by one: run-time paths stay unresolved
        value = cfg.get(group)
        if isinstance(value, DictConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, dict):
            skip = _RUNTIME_KEYS.get(group, set())
            value = {k: v for k, v in value.items() if k not in skip}
            if group == "data" and isinstance(value.get("synthetic"), dict):
                value["synthetic"] = {k: v for k, v in value["synthetic"].items() if k != "dir"}
        defining[group] = value
    return hashlib.sha1(json.dumps(defining, sort_keys=True, default=str).encode()).hexdigest()


def run_tags(cfg: DictConfig, method: str) -> dict:
    """The leaderboard's filters: method, model, data, seed, fold, plus the data's own tags."""
    tags = {
        "method": method,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "task": cfg.data.task,
        "seed": cfg.seed,
        "fold": cfg.data.get("fold", "none"),
        "torch_version": torch.__version__,
        "baseline_key": baseline_key(cfg),
    }
    if cfg.data.get("tags"):
        tags.update(OmegaConf.to_container(cfg.data.tags, resolve=True))
    if os.environ.get("MLFLOW_PARENT_RUN_ID"):  # set by the sweep callback (src.tracking.sweep)
        tags["mlflow.parentRunId"] = os.environ["MLFLOW_PARENT_RUN_ID"]
        tags["sweep_id"] = os.environ.get("SWEEP_ID", "")
    return tags


def log_config(run: TrackedRun, cfg: DictConfig, with_method: bool = True) -> None:
    """Resolved config as params (flattened) and as YAML, plus Hydra's own ``.hydra/`` folder.

    A baseline trained on the way to a method run logs ``with_method=False``: the method's keys
    would otherwise make it look like a variant on the leaderboard.
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if not with_method:
        resolved.pop("method", None)
    run.log_params(flatten(resolved))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(OmegaConf.to_yaml(resolved))
        run.log_artifact(path, "config")
    hydra_dir = Path(HydraConfig.get().runtime.output_dir) / ".hydra"
    if hydra_dir.is_dir():
        run.log_artifact(hydra_dir, "config/.hydra")


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{a: {b: 1}}`` -> ``{"a.b": 1}``: the param names a run logs."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
