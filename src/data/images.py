"""Image classification data held in memory as uint8 tensors, batched with on-the-fly augmentation.

Data sets (``digits``, ``cifar10``) only produce :class:`ImageSplits`; this module does the rest:
per-channel normalisation fitted on the training split, random crop + optional flip at train time
(seeded, so runs are reproducible), and deterministic evaluation batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from src.core.errors import ConfigError
from src.data.sampling import epoch_shuffle


@dataclass
class ImageSplits:
    """uint8 images (N, C, H, W) and int64 labels per split, plus class names."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    classes: list[str]


def carve_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Stratified split of training data into (train, val); the test split is never touched."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ConfigError(f"data.val_fraction={fraction} must be between 0 and 1")
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)


def subset(x: np.ndarray, y: np.ndarray, size: int | None, seed: int):
    """A seeded random subset of ``size`` samples (all when ``size`` is None or too large)."""
    if size is None or size >= len(y):
        return x, y
    if size < 1:
        raise ConfigError(f"data.train_subset={size} must be a positive number of images")
    keep = np.sort(np.random.default_rng(seed).permutation(len(y))[:size])
    return x[keep], y[keep]


class ImageBatches(Dataset):
    """Normalised float batches from uint8 tensors; augmentation only when ``augment`` is set."""

    def __init__(self, images, labels, mean, std, crop_padding=0, hflip=False, augment=False):
        self.images, self.labels = images, labels
        self.mean, self.std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
        self.crop_padding, self.hflip, self.augment = crop_padding, hflip, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(positions)
        x = (self.images[index].float() / 255.0 - self.mean) / self.std
        if self.augment:
            x = self._augment(x)
        return {"x": x, "y": self.labels[index]}

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Random crop after zero padding, and horizontal flip; draws from torch's global RNG."""
        pad = self.crop_padding
        if pad:
            size = x.shape[-1]
            padded = F.pad(x, (pad, pad, pad, pad))
            offsets = torch.randint(0, 2 * pad + 1, (len(x), 2))
            x = torch.stack(
                [padded[i, :, r : r + size, c : c + size] for i, (r, c) in enumerate(offsets)]
            )
        if self.hflip:
            flip = torch.rand(len(x)) < 0.5
            x[flip] = x[flip].flip(-1)
        return x


def _identity(batch):
    return batch


class ImageDataModule(pl.LightningDataModule):
    """Train / val / test image splits with normalisation fitted on the training split.

    Args:
        load: Callable returning :class:`ImageSplits` (called once, in ``setup``).
        batch_size: Training batch size.
        eval_batch_size: Validation / test batch size.
        crop_padding: Random-crop padding at train time (0: no crop).
        hflip: Random horizontal flips at train time.
        num_workers: DataLoader workers.
    """

    def __init__(
        self, load, batch_size=64, eval_batch_size=256, crop_padding=0, hflip=False, num_workers=0
    ):
        super().__init__()
        self.load, self.batch_size, self.eval_batch_size = load, batch_size, eval_batch_size
        self.crop_padding, self.hflip, self.num_workers = crop_padding, hflip, num_workers
        self.splits: ImageSplits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        self.splits = self.load()
        train = self.splits.train[0].float() / 255.0
        self.mean = train.mean(dim=(0, 2, 3))
        self.std = train.std(dim=(0, 2, 3)).clamp_min(1e-3)

    def dataset(self, split: str, augment: bool = False) -> ImageBatches:
        images, labels = getattr(self.splits, split)
        return ImageBatches(
            images, labels, self.mean, self.std, self.crop_padding, self.hflip, augment
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train", augment=True)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=epoch_shuffle(dataset),
            num_workers=self.num_workers,
            collate_fn=_identity,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_identity,
        )

    def calibration_dataloader(self) -> DataLoader:
        """Un-augmented training images in a fixed shuffled order (seed 0)."""
        return DataLoader(
            self.dataset("train"),
            batch_size=self.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            collate_fn=_identity,
        )

    def example_inputs(self, n: int) -> torch.Tensor:
        """``n`` real, normalised test images (repeated if fewer), for latency measurement."""
        positions = np.resize(np.arange(len(self.splits.test[1])), n).tolist()
        return self.dataset("test").__getitems__(positions)["x"]

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def artifact_extras(self) -> dict:
        """What a reloaded model needs to classify new images the same way."""
        return {
            "task": "classification",
            "classes": self.splits.classes,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "image_size": int(self.splits.train[0].shape[-1]),
        }

    def profile(self) -> dict:
        """What the data set is: its classes and fixed splits (the same for every seed)."""
        return {"n_classes": len(self.splits.classes), **self.describe()}

    def describe(self) -> dict:
        return {
            f"n_{name}": len(getattr(self.splits, name)[1]) for name in ("train", "val", "test")
        }

    def fingerprint(self) -> str:
        """What data set this is, by content: every split's labels and first images."""
        digest = hashlib.sha1(",".join(self.splits.classes).encode())
        for name in ("train", "val", "test"):
            images, labels = getattr(self.splits, name)
            digest.update(labels.numpy().tobytes())
            digest.update(images[:16].contiguous().numpy().tobytes())
        return digest.hexdigest()[:12]
