"""Training with Lightning: the task's module, the run's logger, timing; no config in sight.

The logger writes the curves into the run we own (:mod:`src.tracking.mlflow_run`) but never
ends it: Lightning's ``MLFlowLogger`` would mark it FINISHED as soon as ``fit`` returns, before
evaluation and artifacts.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import MLFlowLogger
from torch import nn

from src.core import schema
from src.core.threads import torch_threads
from src.pipeline.checkpoint import checkpointing, last_checkpoint
from src.pipeline.specs import TrainerSpec
from src.tasks import OptimSpec, Task
from src.tracking.mlflow_run import TrackedRun


@dataclasses.dataclass(frozen=True)
class Fitter:
    """Trains models of one run with its task, data, optimiser and trainer settings.

    Attributes:
        task: Builds the LightningModule (task loss).
        data: The datamodule.
        optim: Optimiser settings.
        trainer: Trainer settings.
        run: The MLflow run the curves go to (None: not logged, e.g. in a benchmark).
        output_dir: Lightning's root folder.
    """

    task: Task
    data: pl.LightningDataModule
    optim: OptimSpec
    trainer: TrainerSpec
    run: TrackedRun | None
    output_dir: Path

    def fit(
        self,
        model: nn.Module,
        epochs: int | None = None,
        lr: float | None = None,
        extra_loss: nn.Module | None = None,
        checkpoints: Path | None = None,
    ) -> None:
        """Train ``model`` in place; ``epochs``/``lr`` (None: the run's) for fine-tuning, and
        ``extra_loss`` added to the task loss (distillation). This is the ``fine_tune`` a
        method gets.

        ``checkpoints``: a folder where ``last.ckpt`` is written every epoch; if one is there
        already, training resumes from it (weights, optimiser, schedule, epoch, RNG states)."""
        epochs = int(epochs or self.trainer.max_epochs)
        optim = dataclasses.replace(self.optim, lr=float(lr or self.optim.lr))
        # Fine-tuning starts from a reloaded (eval-mode) baseline: train its BatchNorm/dropout.
        module = self.task.build_module(model.train(), optim, epochs, extra_loss=extra_loss)
        # The Trainer's deterministic=True flips a process-wide switch (when it is built) that
        # int8 kernels refuse (quantized_resize_cpu_); it must hold for training only.
        previous = torch.are_deterministic_algorithms_enabled()
        started = time.perf_counter()
        with torch_threads(self.trainer.threads):
            try:
                callbacks, plugins = checkpointing(checkpoints) if checkpoints else ([], [])
                callbacks = [*callbacks, EpochsTrained()]
                trainer = pl.Trainer(
                    **{**self.trainer.options, "max_epochs": epochs},
                    logger=lightning_logger(self.run) if self.run else False,
                    enable_checkpointing=checkpoints is not None,
                    callbacks=callbacks,
                    plugins=plugins,
                    default_root_dir=str(self.output_dir),
                )
                resume = last_checkpoint(checkpoints)
                trainer.fit(module, datamodule=self.data, ckpt_path=resume, weights_only=True)
            finally:
                torch.use_deterministic_algorithms(previous)
        seconds = time.perf_counter() - started
        model.cpu()  # trained on a GPU or not: int8 kernels and the latency harness are CPU's
        if self.run is None:
            return
        self.run.set_tags({schema.TRAIN_DEVICE: _device(trainer)})
        seen = len(self.data.train_dataloader().dataset) * EpochsTrained.of(trainer)
        self.run.log_metrics(
            {schema.FIT_SECONDS: seconds, schema.TRAIN_THROUGHPUT: seen / max(seconds, 1e-9)}
        )


@dataclasses.dataclass
class CheckpointedFits:
    """A method's ``fine_tune`` that checkpoints every epoch of each of its fine-tunings, the
    n-th in ``folder/fit<n>/``: a rerun of the job rebuilds the method's steps as before and each
    fine-tuning resumes from its own checkpoint (a finished one restores its final weights at
    once, the interrupted one goes on from its last epoch), so at most one epoch is lost."""

    fitter: Fitter
    folder: Path
    count: int = 0

    def fit(self, model: nn.Module, epochs=None, lr=None, extra_loss=None) -> None:
        checkpoints = Path(self.folder) / f"fit{self.count}"
        self.count += 1
        self.fitter.fit(model, epochs, lr, extra_loss, checkpoints=checkpoints)


class EpochsTrained(pl.Callback):
    """How many epochs this ``fit`` trained (a resumed one counts from its checkpoint), kept in
    ``trainer.callback_metrics``: the one part of a spawned DDP worker's trainer state that
    Lightning hands back to the launching process, whose own epoch counter stays at 0 (its
    throughput read 0 samples/s under ``trainer=ddp``)."""

    KEY = "fit/epochs_trained"

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        self.first = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        trained = float(trainer.current_epoch - self.first)
        trainer.callback_metrics[self.KEY] = torch.tensor(trained)

    @classmethod
    def of(cls, trainer: pl.Trainer) -> float:
        """The epochs ``trainer``'s fit trained, in this process or in its spawned workers."""
        return float(trainer.callback_metrics.get(cls.KEY, trainer.current_epoch))


def _device(trainer: pl.Trainer) -> str:
    """``cpu``, ``cuda:0``, or ``cpu x2 (DDPStrategy)`` for several processes."""
    device = str(trainer.strategy.root_device)
    if trainer.world_size > 1:
        device += f" x{trainer.world_size} ({type(trainer.strategy).__name__})"
    return device


class _RunOwnedLogger(MLFlowLogger):
    """Lightning logs training curves into our run but never ends it (see module docstring)."""

    def finalize(self, status: str = "success") -> None:
        return None


def lightning_logger(run: TrackedRun) -> MLFlowLogger:
    """An ``MLFlowLogger`` writing to ``run`` (explicit URI: its default is a file store)."""
    return _RunOwnedLogger(tracking_uri=run.tracking_uri, run_id=run.run_id)
