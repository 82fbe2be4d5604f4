"""Builders from the composed config to LightningDataModules, keyed by ``data["name"]``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import pytorch_lightning as pl

from src.core.errors import ConfigError
from src.core.registry import Registry

log = logging.getLogger(__name__)

DATAMODULES: Registry[Callable[..., pl.LightningDataModule]] = Registry("data", hint="data=NAME")
register_data = DATAMODULES.register


def build_datamodule(data: Mapping) -> pl.LightningDataModule:
    """The DataModule of source ``data["name"]`` built from the ``data`` settings, set up and
    ready to serve batches."""
    module = DATAMODULES.get(data["name"])(data)
    module.setup("fit")
    return module


def synthetic_root(preset: str, folder: str | Path, brand: int, seed: int) -> Path:
    """Folder holding generated data in the released layout; generated once, then reused."""
    from src.data.synth import generate

    root = Path(folder) / f"{preset}-seed{seed}"
    if not (root / f"battery_brand{brand}").is_dir():
        log.info(
            "no data.root given: generating the %r preset (brand %d) in %s", preset, brand, root
        )
        try:
            generate(preset, root, brand=brand, seed=seed)
        except ValueError as err:  # preset/brand mismatch: say which keys to change
            raise ConfigError(
                f"cannot generate data.synthetic.preset={preset!r} for data.brand={brand}: {err}"
            ) from err
    return root


@register_data("battery")
def battery(data: Mapping) -> pl.LightningDataModule:
    from src.data.battery import BatteryDataModule

    root = data["root"]
    if root is None:
        synthetic = data["synthetic"]
        root = synthetic_root(
            synthetic["preset"], synthetic["dir"], data["brand"], synthetic["seed"]
        )
    return BatteryDataModule(
        root=root,
        brand=data["brand"],
        fold=data["fold"],
        channels=list(data["channels"]),
        cache_dir=data["cache_dir"],
        normalizer=data["normalizer"],
        split_seed=data["split_seed"],
        batch_size=data["batch_size"],
        eval_batch_size=data["eval_batch_size"],
        num_workers=data["num_workers"],
        cache_workers=data["cache_workers"],
        # Set by the entry point from the task (src.cli.specs.data_settings), not in the config.
        calibration_normals=data.get("calibration_normals", 0),
    )


def _image_module(data: Mapping, load) -> pl.LightningDataModule:
    from src.data.images import ImageDataModule

    return ImageDataModule(
        load,
        batch_size=data["batch_size"],
        eval_batch_size=data["eval_batch_size"],
        crop_padding=data["crop_padding"],
        hflip=data["hflip"],
        num_workers=data["num_workers"],
    )


@register_data("digits")
def digits(data: Mapping) -> pl.LightningDataModule:
    from functools import partial

    from src.data.image_sources import load_digits_splits

    load = partial(
        load_digits_splits,
        data["image_size"],
        data["test_fraction"],
        data["val_fraction"],
        data["split_seed"],
        data["train_subset"],
    )
    return _image_module(data, load)


@register_data("cifar10")
def cifar10(data: Mapping) -> pl.LightningDataModule:
    from functools import partial

    from src.data.image_sources import load_cifar10_splits

    load = partial(
        load_cifar10_splits,
        data["root"],
        data["val_fraction"],
        data["split_seed"],
        data["train_subset"],
    )
    return _image_module(data, load)
