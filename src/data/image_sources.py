"""The image data sets: scikit-learn's 8x8 digits (embedded, real) and CIFAR-10 python batches.

CIFAR-10 batches are pickles; they are read with the same allowlisting unpickler as the battery
metadata (builtins and the numpy array machinery only), so a tampered batch cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from src.core.errors import UserError
from src.data.images import ImageSplits, carve_validation, subset
from src.data.safe_load import restricted_pickle_load

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def load_digits_splits(
    image_size: int,
    test_fraction: float,
    val_fraction: float,
    seed: int,
    train_subset: int | None = None,
) -> ImageSplits:
    """Digits (1,797 real 8x8 scans, 16 grey levels), upsampled to ``image_size``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images / 16.0 * 255.0).astype(np.uint8)[:, None]
    x_rest, x_test, y_rest, y_test = train_test_split(
        images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    x_train, x_val, y_train, y_val = carve_validation(x_rest, y_rest, val_fraction, seed)
    x_train, y_train = subset(x_train, y_train, train_subset, seed)
    return ImageSplits(
        train=_tensors(x_train, y_train, image_size),
        val=_tensors(x_val, y_val, image_size),
        test=_tensors(x_test, y_test, image_size),
        classes=[str(d) for d in range(10)],
    )


def _tensors(x: np.ndarray, y: np.ndarray, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.ascontiguousarray(x))
    if images.shape[-1] != image_size:
        # Bilinear upsampling once, at load time; stored back as uint8 like any image set.
        scaled = F.interpolate(
            images.float(), size=image_size, mode="bilinear", align_corners=False
        )
        images = scaled.round().clamp(0, 255).to(torch.uint8)
    return images, torch.as_tensor(np.asarray(y), dtype=torch.int64)


def find_cifar10(root: str | Path) -> Path:
    """The folder holding the python batches: ``root`` or ``root/cifar-10-batches-py``."""
    if root is None:
        raise UserError(
            "data.root is not set; download cifar-10-python.tar.gz, extract it, and pass "
            "data.root=DIR (the folder holding data_batch_1..5, test_batch, batches.meta)"
        )
    root = Path(root).expanduser()
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / name).is_file() for name in CIFAR_FILES):
            return folder
    missing = [n for n in CIFAR_FILES if not (root / n).is_file()]
    raise UserError(
        f"CIFAR-10 python batches not found in {root} (missing {missing}); extract "
        f"cifar-10-python.tar.gz so that {root}/data_batch_1 ... test_batch, batches.meta exist"
    )


def _get(batch: dict, key: str):
    """Python-2 batches have bytes keys, re-pickled ones str keys."""
    return batch[key.encode()] if key.encode() in batch else batch[key]


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as uint8 images (N, 3, 32, 32) and int64 labels."""
    batch = restricted_pickle_load(path, encoding="bytes")
    try:
        data, labels = np.asarray(_get(batch, "data")), np.asarray(_get(batch, "labels"))
    except (KeyError, TypeError):
        raise UserError(f"{path} is not a CIFAR-10 batch (no data/labels); re-extract it") from None
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or len(labels) != len(data)
    ):
        raise UserError(f"{path}: expected uint8 data (N, 3072) and N labels; re-extract it")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10_splits(
    root, val_fraction: float, seed: int, train_subset: int | None = None
) -> ImageSplits:
    """The five training batches (subset, then a validation carve-out) and the test batch."""
    folder = find_cifar10(root)
    parts = [read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_all = np.concatenate([p[0] for p in parts])
    y_all = np.concatenate([p[1] for p in parts])
    x_all, y_all = subset(x_all, y_all, train_subset, seed)
    x_train, x_val, y_train, y_val = carve_validation(x_all, y_all, val_fraction, seed)
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    meta = restricted_pickle_load(folder / "batches.meta", encoding="bytes")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(meta, "label_names")]
    return ImageSplits(
        _tensors(x_train, y_train, 32),
        _tensors(x_val, y_val, 32),
        _tensors(x_test, y_test, 32),
        names,
    )
