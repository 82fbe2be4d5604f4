"""The typed, validated inputs of one run. The entry points build them from the Hydra config once
(``src.cli.specs``); nothing below reads the config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.core.schema import BASELINE, RunIdentity
from src.measure.latency import LatencySpec
from src.methods import BaselineConfig, MethodConfig
from src.models import create_model
from src.runtimes.base import RuntimeSpec
from src.tasks import OptimSpec, Task


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and the keyword arguments of its config."""

    name: str
    kwargs: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        return create_model(self.name, **self.kwargs)


@dataclass(frozen=True)
class TrainerSpec:
    """Lightning Trainer settings. The defaults here are the config's (``registry/trainer``
    holds them; ``conf/trainer/default.yaml`` adds Lightning's own keyword arguments).

    Attributes:
        max_epochs: Training epochs (>= 1).
        options: The other ``pytorch_lightning.Trainer`` keyword arguments.
        threads: ``torch.set_num_threads`` while training (tag ``train.threads``); None keeps
            torch's setting. 1 by default: at DyAD's demo size 2 threads cost twice the CPU for
            the same wall time, and parallel launchers share the machine.
        resume: ``auto``: a baseline training of this config that stopped (killed, failed) with
            a checkpoint resumes from it in its own run; ``never``: always train anew.
        baseline_wait_s: How long a job waits for a parallel job that trains its baseline (a
            claim in the tracking store: one trainer per config on any machine).
    """

    max_epochs: int = 5
    options: dict = field(default_factory=dict)
    threads: int | None = 1
    resume: str = "auto"
    baseline_wait_s: float = 86400.0
    OWN: ClassVar[tuple[str, ...]] = ("max_epochs", "threads", "resume", "baseline_wait_s")

    @classmethod
    def defaults(cls) -> dict:
        """The config keys this spec owns (all but Lightning's ``options``), with defaults."""
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        return {name: fields[name] for name in cls.OWN}

    def __post_init__(self) -> None:
        accelerator = str(self.options.get("accelerator", "auto"))
        if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.accelerator={accelerator} but this machine has no CUDA device: train "
                "on the CPU (drop trainer=gpu) or run where a GPU is"
            )
        wait = self.baseline_wait_s
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait > 0:
            raise ConfigError(f"trainer.baseline_wait_s={wait!r} must be a number of seconds > 0")
        if self.resume not in ("auto", "never"):
            raise ConfigError(f"trainer.resume={self.resume!r} must be auto or never")
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) < 1):
            raise ConfigError(f"trainer.threads={self.threads!r} must be an int >= 1 or null")
        if isinstance(self.max_epochs, bool) or not isinstance(self.max_epochs, int):
            raise ConfigError(f"trainer.max_epochs={self.max_epochs!r} must be an int >= 1")
        if self.max_epochs < 1:
            raise ConfigError(
                f"trainer.max_epochs={self.max_epochs} trains nothing (or forever); give an int "
                ">= 1"
            )


@dataclass(frozen=True)
class TrackingSpec:
    """Where the run is recorded: the store, the MLflow experiment, the run's name."""

    uri: str
    experiment: str
    run_name: str | None = None


@dataclass(frozen=True)
class ConfigRecord:
    """The resolved config as the run logs it: flattened params and the YAML text (with and
    without the method, for a baseline trained on the way to a method run), and Hydra's folder.
    """

    params: dict
    yaml: str
    baseline_params: dict
    baseline_yaml: str
    hydra_dir: Path | None = None  # Hydra's .hydra/ folder of the job, logged when it exists


@dataclass(frozen=True)
class RunSpec:
    """Everything one ``python -m src.train`` job needs.

    Attributes:
        identity: The run's identity tags; ``method`` is this job's method.
        seed: Seed of everything random (training, bootstrap).
        model: The architecture.
        data: The data source's settings (a plain mapping, read by its registered builder).
        task: The task object (loss, evaluation, metrics).
        optim: Optimiser settings.
        trainer: Trainer settings.
        latency: How latency is timed.
        runtimes: The deployment runtimes every model is measured in, and their parity rule.
        method: The compression method (``BaselineConfig()`` for the fp32 model).
        tracking: Where the run is recorded.
        baseline_key: Hash of what defines the fp32 baseline (model, data, task loss, optimiser,
            trainer, seed).
        config: The config as logged.
        output_dir: The job's output folder (Lightning's root dir).
        data_tags: The data's own tags (``brand``), logged on the run.
        parent_run_id: The sweep's parent run, for a sweep job.
        sweep_id: The sweep's id, for a sweep job.
        step_key: Hash of what, beside the method's config, decides what it computes (tagged;
            a chain's step reuses a run of the same key: :mod:`src.pipeline.reuse`).
    """

    identity: RunIdentity
    seed: int
    model: ModelSpec
    data: dict
    task: Task
    optim: OptimSpec
    trainer: TrainerSpec
    latency: LatencySpec
    runtimes: RuntimeSpec
    method: MethodConfig
    tracking: TrackingSpec
    baseline_key: str
    config: ConfigRecord
    output_dir: Path
    data_tags: dict = field(default_factory=dict)
    parent_run_id: str | None = None
    sweep_id: str | None = None
    step_key: str = ""
    code: str = ""
    rerun: bool = False

    @property
    def job_key(self) -> str:
        """What decides this job's results, hashed (SHA-256 of the canonical JSON): the config
        as logged, less what only says where it writes or how it is watched
        (:data:`src.core.schema.NOT_JOB_IDENTITY`), the method config with its kind and
        version, and the code version. The data's content is compared beside it
        (``data_fingerprint``). A baseline's key leaves the method node out, so a baseline
        trained on the way to a method run is the baseline job's."""
        params = self.config.baseline_params if self.is_baseline else self.config.params
        kept = {
            k: v
            for k, v in params.items()
            if not any(k == n or k.startswith(n) for n in schema.NOT_JOB_IDENTITY)
        }
        content = {"params": kept, "method": self.method.to_dict(), "code": self.code}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def is_baseline(self) -> bool:
        return isinstance(self.method, BaselineConfig)

    def as_baseline(self) -> RunSpec:
        """This job's fp32 baseline, trained on the way to its method run."""
        identity = dataclasses.replace(self.identity, method=BASELINE)
        return dataclasses.replace(self, identity=identity, method=BaselineConfig())
