"""Reader, cache and DataModule: ``python -m pytest tests/data/test_battery.py``."""

import dataclasses
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

from src.data.battery import BatteryDataModule
from src.data.cache import open_store
from src.data.layout import DataLayoutError, find_brand, read_labels
from src.data.safe_load import CorruptFileError, UnsafePickleError, load_snippet
from src.models.dyad import CHANNELS_BRAND_A


def _module(root, cache, **kw):
    args = dict(root=root, brand=3, fold=0, channels=CHANNELS_BRAND_A, cache_dir=cache)
    module = BatteryDataModule(**{**args, **kw})
    module.setup()
    return module


def _snippets(root):
    return sorted((root / "battery_brand3" / "data").glob("*.pkl"), key=lambda p: int(p.stem))


def test_store_matches_the_files(tiny_root, tmp_path):
    layout = find_brand(tiny_root, 3)
    store = open_store(layout, tmp_path)
    files = _snippets(tiny_root)
    assert len(store) == len(files) == store.manifest["n_snippets"]
    for row in (0, len(files) // 2, len(files) - 1):
        array, meta = load_snippet(files[row])
        np.testing.assert_allclose(store.snippets[row], array.astype(np.float32))
        assert store.car[row] == meta["car"] and store.mileage[row] == meta["mileage"]


def test_cache_is_reused_then_rebuilt_when_sources_change(tiny_copy, tmp_path):
    layout = find_brand(tiny_copy, 3)
    first = open_store(layout, tmp_path / "cache")
    again = open_store(layout, tmp_path / "cache")
    assert again.manifest["fingerprint"] == first.manifest["fingerprint"]
    victim = _snippets(tiny_copy)[0]
    array, meta = load_snippet(victim)
    time.sleep(0.01)
    torch.save((array + 1.0, meta), victim)
    rebuilt = open_store(find_brand(tiny_copy, 3), tmp_path / "cache")
    assert rebuilt.manifest["fingerprint"] != first.manifest["fingerprint"]
    np.testing.assert_allclose(rebuilt.snippets[0], (array + 1.0).astype(np.float32))
    folders = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(folders) == 1 and len([p for p in folders[0].iterdir() if p.is_dir()]) == 1


def test_partial_build_is_never_used(tiny_copy, tmp_path):
    victim = _snippets(tiny_copy)[5]
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(CorruptFileError, match=f"{victim.name}.*truncated"):
        open_store(find_brand(tiny_copy, 3), tmp_path)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_dir() and len(p.name) == 16]
    assert leftovers == [] and not list(tmp_path.rglob("manifest.json"))


def test_nan_snippets_are_skipped_and_counted(tiny_copy, tmp_path):
    victim = _snippets(tiny_copy)[3]
    array, meta = load_snippet(victim)
    array[10, 2] = np.nan
    torch.save((array, meta), victim)
    store = open_store(find_brand(tiny_copy, 3), tmp_path)
    assert store.manifest["n_skipped_nonfinite"] == 1
    assert victim.name in store.manifest["skipped_examples"][0]
    assert len(store) == len(_snippets(tiny_copy)) - 1 and np.isfinite(store.snippets).all()


def test_wrong_shape_is_refused(tiny_copy, tmp_path):
    victim = _snippets(tiny_copy)[1]
    _, meta = load_snippet(victim)
    torch.save((np.zeros((64, 8)), meta), victim)
    with pytest.raises(DataLayoutError, match=r"shape \(64, 8\), expected \(128, 8\)"):
        open_store(find_brand(tiny_copy, 3), tmp_path)


def test_malicious_snippet_is_refused(tiny_copy, tmp_path):
    victim = _snippets(tiny_copy)[2]
    torch.save((np.zeros((128, 8)), {"x": os.system}), victim)
    with pytest.raises(UnsafePickleError, match=victim.name):
        open_store(find_brand(tiny_copy, 3), tmp_path)


def test_layout_errors_say_what_to_fix(tiny_copy, tmp_path):
    with pytest.raises(DataLayoutError, match="does not exist; point it"):
        find_brand(tmp_path / "nowhere", 3)
    with pytest.raises(DataLayoutError, match="data.brand=7 is unknown"):
        find_brand(tiny_copy, 7)
    with pytest.raises(DataLayoutError, match="battery_brand1 not found"):
        find_brand(tiny_copy, 1)
    (tiny_copy / "battery_brand3" / "column.pkl").unlink()
    assert find_brand(tiny_copy, 3).columns  # columns.pkl is the other released spelling
    (tiny_copy / "battery_brand3" / "columns.pkl").unlink()
    with pytest.raises(DataLayoutError, match="neither column.pkl nor columns.pkl"):
        find_brand(tiny_copy, 3)


def test_car_missing_from_labels(tiny_copy, tmp_path):
    labels_csv = tiny_copy / "battery_brand3" / "label" / "all_label.csv"
    labels = pd.read_csv(labels_csv)
    labels.iloc[1:].to_csv(labels_csv, index=False)
    with pytest.raises(DataLayoutError, match=f"cars \\[{labels.car.iloc[0]}\\] have snippets"):
        _module(tiny_copy, tmp_path)


def test_datamodule_protocol_and_batches(tiny_root, tmp_path):
    dm = _module(tiny_root, tmp_path)
    labels = read_labels(tiny_root / "battery_brand3")
    train_cars = set(dm.store.car[dm.train_index].tolist())
    assert train_cars == set(dm.split.train_cars) and (labels.loc[list(train_cars)] == 0).all()
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape[1:] == (128, 7) and batch["x"].dtype == torch.float32
    assert batch["mileage"].shape == (batch["x"].shape[0], 1)
    rows = batch["row"].numpy()
    expected = dm.normalizer(np.asarray(dm.store.snippets[rows]))
    cols = [dm.store.columns.index(c) for c in CHANNELS_BRAND_A]
    np.testing.assert_allclose(batch["x"].numpy(), expected[..., cols], rtol=1e-5, atol=1e-5)
    scored = np.concatenate([b["row"].numpy() for b in dm.score_dataloader(dm.split.test_cars)])
    assert set(dm.store.car[scored].tolist()) == set(dm.split.test_cars)


def test_calibration_cars_are_held_out_of_training_and_of_the_normaliser(tiny_copy, tmp_path):
    dm = _module(tiny_copy, tmp_path / "a", calibration_normals=4)
    calibration = set(dm.split.calibration_cars)
    assert len(calibration) == 4 and dm.describe()["n_calibration_cars"] == 4
    assert calibration.isdisjoint(dm.store.car[dm.train_index].tolist())
    paper = _module(tiny_copy, tmp_path / "b")
    assert set(paper.split.train_cars) == set(dm.split.train_cars) | calibration
    for path in _snippets(tiny_copy):
        array, meta = load_snippet(path)
        if meta["car"] in calibration:
            torch.save((array * 100.0, meta), path)
    after = _module(tiny_copy, tmp_path / "a", calibration_normals=4).normalizer
    np.testing.assert_array_equal(dm.normalizer.mean, after.mean)


def test_normaliser_ignores_test_cars(tiny_copy, tmp_path):
    before = _module(tiny_copy, tmp_path / "a").normalizer
    dm = _module(tiny_copy, tmp_path / "b")
    test_car = dm.split.test_cars[0]
    for path in _snippets(tiny_copy):
        array, meta = load_snippet(path)
        if meta["car"] == test_car:
            torch.save((array * 100.0, meta), path)
    after = _module(tiny_copy, tmp_path / "b").normalizer
    np.testing.assert_array_equal(before.mean, after.mean)


def test_fingerprint_is_the_content_not_the_folder_or_fold(tiny_root, tiny_copy, tmp_path):
    from src.data.synth import generate

    def fingerprint(root, fold=0):
        dm = BatteryDataModule(root, 3, fold, CHANNELS_BRAND_A, tmp_path / "cache")
        dm.setup()
        return dm.fingerprint()

    same = fingerprint(tiny_root)
    assert same == fingerprint(tiny_copy) == fingerprint(tiny_root, fold=2)
    generate("tiny", tmp_path / "other", brand=3, seed=1)
    assert fingerprint(tmp_path / "other") != same


def test_a_scan_sees_every_car_through_a_few_evenly_spaced_snippets(tiny_root, tmp_path):
    dm = _module(tiny_root, tmp_path)
    cars = list(dm.split.tuning_cars)
    rows = np.concatenate([b["row"].numpy() for b in dm.score_dataloader(cars, per_car=3)])
    full = dm.snippet_index(cars)
    per_car = pd.Series(dm.store.car[rows]).value_counts()
    counts = pd.Series(dm.store.car[full]).value_counts()
    assert set(per_car.index) == set(cars)
    assert (per_car == np.minimum(3, counts.loc[per_car.index])).all()
    first = full[dm.store.car[full] == cars[0]]  # spread: first, middle, last of the car
    spread = np.unique(np.linspace(0, len(first) - 1, 3).round().astype(int))
    assert rows[: len(spread)].tolist() == first[spread].tolist() and spread[-1] == len(first) - 1


def test_tuning_figures_agree_with_the_evaluation_and_never_read_test_cars(tiny_root, tmp_path):
    from src.models import create_model
    from src.tasks import create_task

    task = create_task({"name": "anomaly", "evaluation": {"calibration_normals": 0.4}})
    dm = _module(tiny_root, tmp_path, calibration_normals=task.held_out_normals)
    model = create_model("dyad_tiny").eval()
    assert (
        task.tune(model, dm, 0)["tuning/auroc"]
        == task.evaluate(model, dm, 0).metrics["tuning/auroc"]
    )
    dm.split = dataclasses.replace(dm.split, test_cars=())  # tuning needs no test car at all
    quick = task.tune(model, dm, 0, subsample=2)
    assert set(quick) == {"tuning/auroc", "tuning/loss"} and quick["tuning/loss"] > 0
