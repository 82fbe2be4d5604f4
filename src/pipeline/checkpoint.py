"""Training checkpoints: one per epoch, written atomically, so a killed training loses at most one
epoch and resumes where it stopped, drawing the same batches as if it had never stopped.

Lightning's own checkpoint carries the weights, optimiser, schedule and loop position, but not
the random number generators that draw dropout masks and a VAE's samples: a resumed run would
train differently from an uninterrupted one. :class:`RngState` adds them, as tensors and plain
values, so the file loads with ``weights_only=True`` (nothing in it runs code). The batch order
needs no state: it is a function of seed and epoch (:mod:`src.data.sampling`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a partial file, then rename: a kill mid-write never leaves a half checkpoint
    where the next run would read it."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, path)


class RngState(Callback):
    """The random state of training saved in the checkpoint: torch (and every CUDA device's,
    where training draws on a GPU), numpy and Python's global generators (dropout, a VAE's
    samples, augmentation; the batch order is a function of seed and epoch,
    :mod:`src.data.sampling`). Put back when the resumed epoch starts:
    not at restore time, since Lightning's sanity check draws numbers in between that an
    uninterrupted run drew before its first epoch."""

    KEY = "rng_state"

    def __init__(self) -> None:
        self.restored: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint[self.KEY] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": _to_lists(random.getstate()),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.restored = checkpoint.get(self.KEY)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.restored is None:
            return
        state, self.restored = self.restored, None
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        cuda = state.get("cuda") or []  # absent in checkpoints of earlier versions
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def checkpointing(folder: Path) -> tuple[list, list]:
    """``(callbacks, plugins)`` for a Trainer that writes ``folder/last.ckpt`` every epoch."""
    # save_last alone writes only when training ends; one "top" file named last, no metric to
    # rank by, is rewritten every epoch
    every_epoch = ModelCheckpoint(
        dirpath=str(folder),
        filename=Path(LAST).stem,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    return [every_epoch, RngState()], [AtomicCheckpointIO()]


def last_checkpoint(folder: str | Path | None) -> Path | None:
    """``folder/last.ckpt`` if it is there (a finished write), else None."""
    if not folder:
        return None
    path = Path(folder) / LAST
    return path if path.is_file() else None


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value
