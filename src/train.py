"""Train a baseline or compress it, evaluate with the task's protocol, record all in MLflow.

python -m src.train                                   # DyAD baseline on generated data
python -m src.train +method=qat                       # a compressed variant of that baseline
python -m src.train -m +method=dynamic,static,qat     # a sweep, one run per method
python -m src.train experiment=dyad_brand3 data.root=DIR data.fold=0
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from src.data.sources import build_datamodule  # noqa: E402
from src.errors import UserError  # noqa: E402
from src.measure.latency import LatencySpec  # noqa: E402
from src.measure.precision import coverage_report  # noqa: E402
from src.measure.report import measure, size_of  # noqa: E402
from src.methods import BASELINE, MethodConfig, MethodContext, apply_method, method_config  # noqa: E402
from src.models import create_model  # noqa: E402
from src.tasks import get_task  # noqa: E402
from src.tasks.base import EvalResult  # noqa: E402
from src.tracking.artifacts import load, log_model  # noqa: E402
from src.tracking.baseline import check_baseline_run, find_baseline_run  # noqa: E402
from src.tracking.mlflow_run import TrackedRun, lightning_logger, tracked_run  # noqa: E402
from src.tracking.run_info import baseline_key, log_config, run_name, run_tags  # noqa: E402

log = logging.getLogger(__name__)
_FAILURES: list[str] = []


@dataclass
class Outcome:
    """A finished run: its id, model, data and evaluation."""

    run_id: str
    model: torch.nn.Module
    data: pl.LightningDataModule
    result: EvalResult


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry. Bad input becomes one logged line (the run is already FAILED in MLflow); the
    sweep goes on with its other jobs and the process exits non-zero at the end."""
    try:
        method = method_config(_container(cfg.get("method")))
        task = get_task(cfg.data.task)
        if method.name == BASELINE:
            outcome = run_baseline(cfg, task)
        else:
            outcome = run_method(cfg, task, method, resolve_baseline(cfg, task, method))
    except UserError as err:
        log.error("%s", err)
        _FAILURES.append(str(err))
        return float("nan")
    print_summary(outcome)
    return outcome.result.metrics[cfg.data.primary_metric]


def _container(node) -> dict | None:
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def run_baseline(cfg: DictConfig, task) -> Outcome:
    """Train the fp32 model, evaluate it, measure it, log it as a ``method=baseline`` run."""
    with open_run(cfg, BASELINE) as run:
        log_config(run, cfg, with_method=False)
        pl.seed_everything(cfg.seed, workers=True)
        data = build_datamodule(cfg)
        model = build_model(cfg)
        fit(cfg, task, model, data, run)
        result = evaluate(cfg, task, model, data)
        result.metrics.update(measure_into(run, cfg, data, model))
        log_results(run, cfg, model, data, result, method=None)
    return Outcome(run.run_id, model, data, result)


def resolve_baseline(cfg: DictConfig, task, method: MethodConfig) -> Outcome:
    """The baseline of this config: named, found in MLflow by config, or trained now."""
    run_id = method.baseline_run_id and check_baseline_run(
        cfg.logger.tracking_uri, method.baseline_run_id
    )
    run_id = run_id or find_baseline_run(
        cfg.logger.tracking_uri, cfg.logger.experiment_name, baseline_key(cfg)
    )
    if run_id is None:
        log.info("no finished baseline for this config: training it first, as its own run")
        return run_baseline(cfg, task)
    log.info("reusing baseline run %s", run_id)
    data = build_datamodule(cfg)
    model = load(run_id, cfg.logger.tracking_uri).model
    return Outcome(run_id, model, data, task.evaluate(model, data, cfg))


def run_method(cfg: DictConfig, task, method: MethodConfig, baseline: Outcome) -> Outcome:
    """Compress the baseline, then evaluate and measure both side by side in this process."""
    with open_run(cfg, method.name, baseline_run_id=baseline.run_id) as run:
        log_config(run, cfg)
        pl.seed_everything(cfg.seed, workers=True)
        data = baseline.data
        context = MethodContext(
            data=data,
            fine_tune=partial(fine_tune, cfg, task, data, run),
            task=cfg.data.task,
            report_step=partial(report_step, cfg, task, data, run, baseline.model),
        )
        model = apply_method(baseline.model, method, context)
        result = evaluate(cfg, task, model, data)
        result.metrics.update(measure_into(run, cfg, data, model, baseline.model))
        result.metrics.update(deltas(result.metrics, baseline.result.metrics))
        result.metrics.update(reference_metrics(baseline))
        table, int8_fraction = coverage_report(model)
        result.tables["int8_coverage"] = table
        result.metrics["quant/int8_fraction"] = int8_fraction
        log_results(run, cfg, model, data, result, method=method)
    return Outcome(run.run_id, model, data, result)


def open_run(cfg: DictConfig, method: str, **extra_tags):
    tags = {**run_tags(cfg, method), **extra_tags}
    name = run_name(cfg, method)
    return tracked_run(cfg.logger.tracking_uri, cfg.logger.experiment_name, name, tags)


def build_model(cfg: DictConfig) -> torch.nn.Module:
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    training_only = ("loss", "student")  # the loss and distillation's default student
    return create_model(
        kwargs.pop("name"), **{k: v for k, v in kwargs.items() if k not in training_only}
    )


def fit(cfg, task, model, data, run: TrackedRun, epochs=None, lr=None, extra_loss=None) -> None:
    """Train with Lightning (curves go to the run). ``epochs``/``lr`` override the config for
    fine-tuning; ``extra_loss`` is added to the task loss (distillation)."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.max_epochs = epochs or cfg.trainer.max_epochs
        cfg.optim.lr = lr or cfg.optim.lr
    module = task.build_module(model, cfg, extra_loss=extra_loss)
    # The Trainer's deterministic=True flips a process-wide switch that int8 kernels refuse
    # (quantized_resize_cpu_); it must hold for training only.
    previous = torch.are_deterministic_algorithms_enabled()
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        logger=lightning_logger(run),
        enable_checkpointing=False,
        default_root_dir=HydraConfig.get().runtime.output_dir,
    )
    started = time.perf_counter()
    try:
        trainer.fit(module, datamodule=data)
    finally:
        torch.use_deterministic_algorithms(previous)
    seconds = time.perf_counter() - started
    seen = len(data.train_dataloader().dataset) * trainer.current_epoch
    run.log_metrics(
        {"time/fit_s": seconds, "throughput/train_samples_s": seen / max(seconds, 1e-9)}
    )


def fine_tune(cfg, task, data, run: TrackedRun, model, epochs, lr, extra_loss=None) -> None:
    """What a method that trains gets: the task's own loss and trainer, its epochs and lr."""
    fit(cfg, task, model, data, run, epochs=epochs, lr=lr, extra_loss=extra_loss)


def report_step(cfg, task, data, run: TrackedRun, baseline, label: str, model) -> None:
    """A chain's intermediate model: its test metrics and size as ``chain/<label>/...``."""
    metrics = {**evaluate(cfg, task, model, data).metrics, **size_of(model, baseline)}
    run.log_metrics(
        {f"chain/{label}/{k}": v for k, v in metrics.items() if k.startswith(("test/", "size/"))}
    )


def reference_metrics(baseline: Outcome) -> dict[str, float]:
    """The baseline's (teacher's) own figures, logged beside the variant's for reference."""
    metrics = {**baseline.result.metrics, **size_of(baseline.model)}
    keep = ("test/", "size/mb", "size/params")
    return {f"baseline/{k}": v for k, v in metrics.items() if k.startswith(keep)}


def evaluate(cfg: DictConfig, task, model, data) -> EvalResult:
    started = time.perf_counter()
    result = task.evaluate(model.cpu(), data, cfg)
    result.metrics["time/eval_s"] = time.perf_counter() - started
    return result


def measure_into(run: TrackedRun, cfg, data, model, baseline=None) -> dict[str, float]:
    """Size and latency (side by side with the baseline when there is one); setup as tags."""
    values = OmegaConf.to_container(cfg.benchmark, resolve=True)
    spec = LatencySpec(**{**values, "batch_sizes": tuple(values["batch_sizes"])})
    metrics, tags = measure(model, data.example_inputs, spec, baseline)
    run.set_tags(tags)
    return metrics


def deltas(metrics: dict, baseline: dict) -> dict[str, float]:
    """Change of every test metric against the baseline, evaluated in this same process."""
    out = {}
    for key, value in metrics.items():
        if key.startswith("test/") and key in baseline:
            out[f"delta/{key.removeprefix('test/')}"] = value - baseline[key]
    return out


def log_results(run: TrackedRun, cfg, model, data, result: EvalResult, method) -> None:
    run.log_metrics(result.metrics)
    run.log_params({f"data_stats.{k}": v for k, v in data.describe().items()})
    for name, table in result.tables.items():
        run.log_table(name, table)
    log_model(
        run, model, cfg.model.name, data.artifact_extras(), asdict(method) if method else None
    )


def print_summary(outcome: Outcome) -> None:
    metrics = outcome.result.metrics
    table = Table(title="results", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    prefixes = ("test/", "size/", "latency/", "delta/", "quant/")
    for key in sorted(k for k in metrics if k.startswith(prefixes)):
        table.add_row(key, f"{metrics[key]:.4g}")
    Console().print(table)
    print(f"MLflow run {outcome.run_id}")


if __name__ == "__main__":
    main()
    if _FAILURES:
        print(f"error: {_FAILURES[-1]}", file=sys.stderr)
        sys.exit(2)
