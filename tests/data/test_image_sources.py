"""CIFAR-10 and digits readers: ``python -m pytest tests/data/test_image_sources.py``."""

import os
import pickle

import numpy as np
import pytest
import torch

from src.core.errors import UserError
from src.data.image_sources import (
    find_cifar10,
    load_cifar10_splits,
    load_digits_splits,
    read_cifar_batch,
)
from src.data.safe_load import UnsafePickleError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(folder, per_batch=40, seed=0):
    """Small batches in the real format: Python-2 style bytes keys, pickle protocol 2."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"filenames": [b"x.png"] * per_batch,
            b"labels": [int(i % 10) for i in range(per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        b"label_names": [n.encode() for n in NAMES],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_reads_the_real_format(tmp_path):
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    assert find_cifar10(tmp_path) == folder  # the archive's own sub-folder is found too
    images, labels = read_cifar_batch(folder / "data_batch_1")
    raw = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    assert images.shape == (40, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[3].reshape(-1), raw[b"data"][3])
    assert labels.tolist() == raw[b"labels"]


def test_splits_subset_and_validation(tmp_path):
    write_cifar(tmp_path)
    splits = load_cifar10_splits(tmp_path, val_fraction=0.25, seed=0, train_subset=100)
    assert len(splits.train[1]) + len(splits.val[1]) == 100
    assert len(splits.val[1]) == 25 and len(splits.test[1]) == 40
    assert splits.classes == NAMES and splits.train[0].dtype == torch.uint8


def test_missing_files_name_where_to_put_them(tmp_path):
    with pytest.raises(UserError, match="data_batch_1.*extract cifar-10-python.tar.gz"):
        find_cifar10(tmp_path)
    with pytest.raises(UserError, match="data.root is not set"):
        find_cifar10(None)


def test_malicious_batch_is_refused(tmp_path):
    folder = write_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="data_batch_2"):
        load_cifar10_splits(tmp_path, 0.1, 0)
    assert not marker.exists()


def test_digits_splits_are_disjoint_stratified_and_upsampled():
    splits = load_digits_splits(image_size=16, test_fraction=0.25, val_fraction=0.1, seed=0)
    sizes = [len(s[1]) for s in (splits.train, splits.val, splits.test)]
    assert sum(sizes) == 1797 and sizes[2] == 450
    assert splits.train[0].shape[1:] == (1, 16, 16)
    assert np.bincount(splits.test[1].numpy()).min() >= 40  # every digit is in the test split
    small = load_digits_splits(16, 0.25, 0.1, 0, train_subset=200)
    assert len(small.train[1]) == 200
    torch.testing.assert_close(small.test[0], splits.test[0])  # subsetting never touches test
