"""Train a model, evaluate it with its task's protocol, and record everything in MLflow.

python -m src.train                                   # DyAD baseline on generated data
python -m src.train experiment=dyad_brand3 data.root=DIR data.fold=0
python -m src.train -m data.fold=0,1,2,3,4            # five folds, one run each
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from src.data.sources import build_datamodule  # noqa: E402
from src.errors import UserError  # noqa: E402
from src.models import create_model  # noqa: E402
from src.tasks import get_task  # noqa: E402
from src.tasks.base import EvalResult  # noqa: E402
from src.tracking.artifacts import log_model  # noqa: E402
from src.tracking.mlflow_run import TrackedRun, lightning_logger, tracked_run  # noqa: E402

log = logging.getLogger(__name__)


_FAILURES: list[str] = []


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry. Bad input becomes one logged line (the run is already FAILED in MLflow); the
    sweep goes on with its other jobs and the process exits non-zero at the end."""
    try:
        return train(cfg)
    except UserError as err:
        log.error("%s", err)
        _FAILURES.append(str(err))
        return float("nan")


def train(cfg: DictConfig) -> float:
    task = get_task(cfg.data.task)
    with tracked_run(
        cfg.logger.tracking_uri, cfg.logger.experiment_name, run_name(cfg), run_tags(cfg)
    ) as run:
        log_config(run, cfg)
        pl.seed_everything(cfg.seed, workers=True)
        data = build_datamodule(cfg)
        model = build_model(cfg)
        fit(cfg, task, model, data, run)
        result = evaluate(cfg, task, model, data)
        log_results(run, cfg, model, data, result)
    print_summary(run, result)
    return result.metrics[cfg.data.primary_metric]


def method_name(cfg: DictConfig) -> str:
    """``baseline`` when no ``+method=`` was given (the group is not in the defaults list)."""
    method = cfg.get("method")
    return "baseline" if method is None else str(method.get("name", "baseline"))


def run_name(cfg: DictConfig) -> str:
    return cfg.get("run_name") or f"{method_name(cfg)}-{cfg.model.name}"


def run_tags(cfg: DictConfig) -> dict:
    """The leaderboard's filters: method, model, data, seed, fold, plus the data's own tags."""
    tags = {
        "method": method_name(cfg),
        "model": cfg.model.name,
        "data": cfg.data.name,
        "task": cfg.data.task,
        "seed": cfg.seed,
        "fold": cfg.data.get("fold", "none"),
        "torch_version": torch.__version__,
    }
    if cfg.data.get("tags"):
        tags.update(OmegaConf.to_container(cfg.data.tags, resolve=True))
    if os.environ.get("MLFLOW_PARENT_RUN_ID"):
        tags["mlflow.parentRunId"] = os.environ["MLFLOW_PARENT_RUN_ID"]
    return tags


def log_config(run: TrackedRun, cfg: DictConfig) -> None:
    """Resolved config as params (flattened) and as YAML, plus Hydra's own ``.hydra/`` folder."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    run.log_params(_flatten(resolved))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(OmegaConf.to_yaml(resolved))
        run.log_artifact(path, "config")
    hydra_dir = Path(HydraConfig.get().runtime.output_dir) / ".hydra"
    if hydra_dir.is_dir():
        run.log_artifact(hydra_dir, "config/.hydra")


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def build_model(cfg: DictConfig) -> torch.nn.Module:
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    return create_model(kwargs.pop("name"), **{k: v for k, v in kwargs.items() if k != "loss"})


def fit(cfg: DictConfig, task, model, data, run: TrackedRun) -> None:
    """Train with Lightning, curves going to the run; records wall time and throughput."""
    module = task.build_module(model, cfg)
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        logger=lightning_logger(run),
        enable_checkpointing=False,
        default_root_dir=HydraConfig.get().runtime.output_dir,
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - started
    seen = len(data.train_dataloader().dataset) * trainer.current_epoch
    run.log_metrics(
        {"time/fit_s": seconds, "throughput/train_samples_s": seen / max(seconds, 1e-9)}
    )


def evaluate(cfg: DictConfig, task, model, data) -> EvalResult:
    started = time.perf_counter()
    result = task.evaluate(model.cpu(), data, cfg)
    result.metrics["time/eval_s"] = time.perf_counter() - started
    result.metrics.update(size_metrics(model))
    return result


def size_metrics(model: torch.nn.Module) -> dict[str, float]:
    """Parameter count and bytes of the saved state_dict (what a user would ship)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state_dict.pt"
        torch.save(model.state_dict(), path)
        size = path.stat().st_size
    return {"size/params": float(sum(p.numel() for p in model.parameters())), "size/mb": size / 1e6}


def log_results(run: TrackedRun, cfg: DictConfig, model, data, result: EvalResult) -> None:
    run.log_metrics(result.metrics)
    run.log_params({f"data_stats.{k}": v for k, v in data.describe().items()})
    for name, table in result.tables.items():
        run.log_table(name, table)
    log_model(run, model, cfg.model.name, data.artifact_extras())


def print_summary(run: TrackedRun, result: EvalResult) -> None:
    table = Table(title="results", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(k for k in result.metrics if k.startswith(("test/", "size/", "time/"))):
        table.add_row(key, f"{result.metrics[key]:.4g}")
    Console().print(table)
    print(f"MLflow run {run.run_id} in {run.tracking_uri}")


if __name__ == "__main__":
    main()
    if _FAILURES:
        print(f"error: {_FAILURES[-1]}", file=sys.stderr)
        sys.exit(2)
