"""``data=battery``: the DyAD release (or generated data in its layout) as a LightningDataModule.

Set-up order matters for the protocol: split by vehicle first, then fit the normaliser and the
mileage range on the training cars only, so nothing about tuning or test cars leaks into training.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.cache import SnippetStore, open_store
from src.data.layout import DataLayoutError, find_brand, read_labels
from src.data.normalizer import fit_normalizer
from src.data.sampling import epoch_shuffle
from src.data.split import FoldSplit, five_fold_split

log = logging.getLogger(__name__)

MILEAGE_REFERENCE_SNIPPETS = 50


@dataclass(frozen=True)
class MileageScaler:
    """``(mileage - low) / span``; a zero span (one shared mileage) maps every value to 0."""

    low: float
    span: float

    def __call__(self, mileage: np.ndarray) -> np.ndarray:
        return ((mileage - self.low) / self.span).astype(np.float32)

    def state_dict(self) -> dict:
        return {"low": self.low, "span": self.span}


class SnippetBatches(Dataset):
    """Snippets of chosen indices, normalised, in the model's channel order.

    ``__getitems__`` fetches a whole batch with one sorted fancy-index into the memmap, which is
    far faster than one read per snippet.
    """

    def __init__(self, store, index, channels, normalizer, mileage):
        self.store, self.index = store, np.asarray(index)
        self.channels = [store.columns.index(c) for c in channels]
        self.mean = normalizer.mean[self.channels]
        self.scale = normalizer.scale[self.channels]
        self.mileage = mileage

    def __len__(self) -> int:
        return len(self.index)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        rows = self.index[np.asarray(positions)]
        order = np.argsort(rows, kind="stable")
        x = np.empty((len(rows), *self.store.snippets.shape[1:2], len(self.channels)), np.float32)
        x[order] = self.store.snippets[rows[order]][..., self.channels]
        x = (x - self.mean) / self.scale
        mileage = self.mileage(self.store.mileage[rows])[:, None]
        return {
            "x": torch.from_numpy(x),
            "mileage": torch.from_numpy(mileage),
            "row": torch.from_numpy(rows),
        }

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([position]).items()}


def _identity(batch):
    return batch


class BatteryDataModule(pl.LightningDataModule):
    """One brand and fold of the DyAD data, split, normalised and batched.

    Args:
        root: Folder holding ``battery_brand{1,2,3}/``.
        brand: 1, 2 or 3.
        fold: 0..4.
        channels: Channels the model reads, in its order.
        cache_dir: Where the packed snippet cache lives.
        normalizer: ``global`` (default) or ``reference``.
        split_seed: Seed of the vehicle shuffle (0 = published protocol).
        calibration_normals: Normal training cars set aside, untrained, for the threshold (a
            count or a share; 0 = published protocol); see :func:`five_fold_split`.
        batch_size: Training batch size.
        eval_batch_size: Scoring batch size.
        num_workers: DataLoader workers (0 is fastest for the memmap on few cores).
        cache_workers: Processes that unpickle during a cache build.
    """

    def __init__(
        self,
        root,
        brand,
        fold,
        channels,
        cache_dir,
        normalizer="global",
        split_seed=0,
        batch_size=128,
        eval_batch_size=512,
        num_workers=0,
        cache_workers=1,
        calibration_normals=0,
    ):
        super().__init__()
        self.root, self.brand, self.fold = Path(root), int(brand), int(fold)
        self.channels, self.cache_dir = list(channels), Path(cache_dir)
        self.normalizer_mode, self.split_seed = normalizer, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.cache_workers = num_workers, cache_workers
        self.calibration_normals = calibration_normals
        self.store: SnippetStore | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.store is not None:
            return
        layout = find_brand(self.root, self.brand)
        missing = [c for c in self.channels if c not in layout.columns]
        if missing:
            raise DataLayoutError(f"model.channels {missing} are not in {layout.columns}")
        self.store = open_store(layout, self.cache_dir, self.cache_workers)
        self.car_labels = _check_labels(read_labels(layout.root), self.store, layout.root)
        self.split = five_fold_split(
            self.car_labels, self.fold, self.split_seed, self.calibration_normals
        )
        self.train_index = self.snippet_index(self.split.train_cars)
        self.normalizer = fit_normalizer(
            self.store.snippets, self.train_index, self.normalizer_mode
        )
        self.mileage = _fit_mileage(self.store.mileage[self.train_index], self.normalizer_mode)

    def snippet_index(self, cars) -> np.ndarray:
        """Rows of ``cars``' snippets: cars in the given order, each car's rows in file order."""
        by_car = np.argsort(self.store.car, kind="stable")  # stable keeps file order per car
        sorted_cars = self.store.car[by_car]
        cars = np.asarray(list(cars), dtype=np.int64)
        starts = np.searchsorted(sorted_cars, cars, "left")
        ends = np.searchsorted(sorted_cars, cars, "right")
        found = [by_car[s:e] for s, e in zip(starts, ends, strict=True)]
        return np.concatenate(found) if found else np.empty(0, np.int64)

    def dataset(self, index) -> SnippetBatches:
        return SnippetBatches(self.store, index, self.channels, self.normalizer, self.mileage)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset(self.train_index)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=epoch_shuffle(dataset),  # the order of (seed, epoch): resumes exactly
            num_workers=self.num_workers,
            collate_fn=_identity,
            drop_last=False,
        )

    def calibration_dataloader(self) -> DataLoader:
        """Training snippets in a fixed shuffled order (seed 0): quantisation calibration sees
        many cars (none of the threshold's held-out ``split.calibration_cars``)."""
        return DataLoader(
            self.dataset(self.train_index),
            batch_size=self.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            collate_fn=_identity,
        )

    def example_inputs(self, n: int) -> torch.Tensor:
        """``n`` real, normalised test snippets (repeated if fewer), for latency measurement."""
        index = self.snippet_index(self.split.test_cars)
        return self.dataset(np.resize(index, n)).__getitems__(list(range(n)))["x"]

    def score_dataloader(self, cars, per_car: int | None = None) -> DataLoader:
        """Deterministic, unshuffled batches over ``cars``' snippets, for scoring; ``per_car``:
        at most that many of each car's snippets, evenly spaced over its file order (a quick
        scan that still sees every car, e.g. a per-layer sensitivity analysis)."""
        index = self.snippet_index(cars)
        if per_car is not None:
            index = _spread(index, self.store.car[index], int(per_car))
        return DataLoader(
            self.dataset(index),
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=_identity,
        )

    def artifact_extras(self) -> dict:
        """What the model needs beside its weights to score new snippets the same way."""
        return {
            "task": "anomaly",
            "channels": self.channels,
            "columns": list(self.store.columns),
            "normalizer": self.normalizer.state_dict(),
            "mileage": self.mileage.state_dict(),
            "brand": self.brand,
            "fold": self.fold,
        }

    def fingerprint(self) -> str:
        """What data set this is, by content (fold and seed aside): the labels, the snippets of
        each car and every car's first snippet. The same release gives the same value on any
        machine and in any folder; another folder's data or another preset gives another."""
        digest = hashlib.sha1(f"battery brand{self.brand}".encode())
        labels = self.car_labels.sort_index()
        digest.update(labels.index.to_numpy(dtype=np.int64).tobytes())
        digest.update(labels.to_numpy(dtype=np.int64).tobytes())
        _, first, counts = np.unique(self.store.car, return_index=True, return_counts=True)
        digest.update(counts.astype(np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.store.snippets[first]).tobytes())
        return digest.hexdigest()[:12]

    def profile(self) -> dict:
        """What the data set is, fold and seed aside (the fingerprint's facts, in numbers)."""
        return {
            "brand": self.brand,
            "n_cars": len(self.car_labels),
            "n_faulty_cars": int((self.car_labels > 0).sum()),
            "n_snippets": len(self.store),
            "n_skipped_nonfinite": self.store.manifest["n_skipped_nonfinite"],
        }

    def describe(self) -> dict:
        """Facts worth logging: sizes of each role and the build manifest."""
        s: FoldSplit = self.split
        return {
            "n_snippets": len(self.store),
            "n_train_snippets": len(self.train_index),
            "n_train_cars": len(s.train_cars),
            "n_tuning_cars": len(s.tuning_cars),
            "n_calibration_cars": len(s.calibration_cars),
            "n_test_cars": len(s.test_cars),
            "n_skipped_nonfinite": self.store.manifest["n_skipped_nonfinite"],
        }


def _spread(index: np.ndarray, cars: np.ndarray, per_car: int) -> np.ndarray:
    """At most ``per_car`` rows of each car's run in ``index`` (grouped by car), evenly spaced."""
    bounds = np.flatnonzero(np.r_[True, cars[1:] != cars[:-1], True])
    keep = [
        index[
            start
            + np.unique(np.linspace(0, end - start - 1, min(per_car, end - start)).round()).astype(
                np.int64
            )
        ]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return np.concatenate(keep) if keep else index


def _check_labels(labels: pd.Series, store: SnippetStore, brand_dir: Path) -> pd.Series:
    """Vehicle labels restricted to cars with snippets; every car labelled, labels consistent."""
    cars = np.unique(store.car)
    unlabelled = sorted(set(cars.tolist()) - set(labels.index.tolist()))
    if unlabelled:
        raise DataLayoutError(
            f"cars {unlabelled[:10]} have snippets but no row in {brand_dir}/label/*.csv; add "
            f"them (car,label) or remove their snippets"
        )
    ghosts = sorted(set(labels.index.tolist()) - set(cars.tolist()))
    if ghosts:
        raise DataLayoutError(
            f"cars {ghosts[:10]} are labelled in {brand_dir}/label/*.csv but have no usable "
            "snippet (none extracted, or every one non-finite); extract their files or remove "
            "their rows"
        )
    per_car = pd.Series(store.label).groupby(store.car).max()
    clash = per_car.index[per_car.to_numpy() != labels.loc[per_car.index].to_numpy()]
    if len(clash):
        raise DataLayoutError(
            f"cars {clash.tolist()[:10]} have snippet labels that disagree with label/*.csv; "
            f"fix the CSV or the snippets"
        )
    return labels.loc[cars]


def _fit_mileage(train_mileage: np.ndarray, mode: str) -> MileageScaler:
    """Mileage target range: first 50 training snippets (reference) or all of them."""
    values = train_mileage[:MILEAGE_REFERENCE_SNIPPETS] if mode == "reference" else train_mileage
    low, span = float(values.min()), float(values.max() - values.min())
    if span <= 1e-9:
        log.warning("training mileage has one value (%.1f); the mileage target is 0", low)
        span = 1.0
    return MileageScaler(low, span)
