"""The synthetic generator must write exactly the released DyAD layout, reproducibly."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from src.data.safe_load import load_snippet, safe_load
from src.data.synth import PRESETS, Preset, generate, list_presets, main

COLUMNS = [
    "volt",
    "current",
    "soc",
    "max_single_volt",
    "min_single_volt",
    "max_temp",
    "min_temp",
    "timestamp",
]
CAR_IDS = {1: range(1, 199), 2: range(201, 251), 3: range(401, 501)}


def _read_csv(path: Path) -> dict[int, int]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["car", "label"]
    return {int(car): int(label) for car, label in rows[1:]}


def _load_all(brand_dir: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every snippet keyed by ``folder/name``."""
    return {f"{p.parent.name}/{p.name}": load_snippet(p) for p in sorted(brand_dir.glob("*/*.pkl"))}


@pytest.fixture(scope="module")
def brand3(tmp_path_factory) -> Path:
    return generate("tiny", tmp_path_factory.mktemp("b3"), seed=0)


@pytest.fixture(scope="module")
def brand1(tmp_path_factory) -> Path:
    return generate("tiny", tmp_path_factory.mktemp("b1"), brand=1, seed=0)


@pytest.fixture(scope="module")
def snippets3(brand3) -> dict[str, tuple[np.ndarray, dict]]:
    return _load_all(brand3)


def test_presets_are_frozen_and_listed():
    assert {"tiny", "clear", "small", "brand1", "brand2", "brand3"} <= set(list_presets())
    assert all(isinstance(p, Preset) for p in PRESETS.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].n_normal = 1  # type: ignore[misc]


def test_brand3_layout(brand3):
    assert brand3.name == "battery_brand3"
    assert sorted(p.name for p in brand3.iterdir()) == [
        "column.pkl",
        "columns.pkl",
        "data",
        "label",
    ]
    assert [p.name for p in (brand3 / "label").iterdir()] == ["all_label.csv"]
    assert safe_load(brand3 / "column.pkl") == COLUMNS
    assert safe_load(brand3 / "columns.pkl") == COLUMNS
    assert not list(brand3.parent.glob(".*partial*"))


def test_brand1_layout(brand1):
    assert brand1.name == "battery_brand1"
    assert sorted(p.name for p in brand1.iterdir()) == ["column.pkl", "label", "test", "train"]
    labels = sorted(p.name for p in (brand1 / "label").iterdir())
    assert labels == ["test_label.csv", "train_label.csv"]
    assert safe_load(brand1 / "column.pkl") == COLUMNS
    train = _read_csv(brand1 / "label" / "train_label.csv")
    test = _read_csv(brand1 / "label" / "test_label.csv")
    assert not set(train) & set(test)
    assert 0.5 < len(train) / (len(train) + len(test)) < 0.9
    for folder, table in (("train", train), ("test", test)):
        cars = {load_snippet(p)[1]["car"] for p in (brand1 / folder).glob("*.pkl")}
        assert cars == set(table)


@pytest.mark.parametrize("brand_fixture", ["brand3", "brand1"])
def test_snippets_load_with_release_types(brand_fixture, request):
    brand_dir = request.getfixturevalue(brand_fixture)
    brand = int(brand_dir.name[-1])
    snippets = _load_all(brand_dir)
    numbers = sorted(int(Path(k).stem) for k in snippets)
    assert numbers == list(range(1, len(numbers) + 1))
    labels = {}
    for path in sorted(brand_dir.glob("label/*.csv")):
        labels.update(_read_csv(path))
    for array, meta in snippets.values():
        assert array.shape == (128, 8) and array.dtype == np.float64
        assert np.isfinite(array).all()
        assert list(meta) == ["label", "car", "charge_segment", "mileage"]
        assert type(meta["car"]) is int and type(meta["mileage"]) is float
        assert isinstance(meta["charge_segment"], str) and meta["charge_segment"].isdigit()
        assert meta["label"] == ("10" if labels[meta["car"]] else "00")
        assert meta["car"] in CAR_IDS[brand]
    assert {m["car"] for _, m in snippets.values()} == set(labels)


def test_faulty_share(brand3):
    labels = _read_csv(brand3 / "label" / "all_label.csv")
    assert 0.10 <= sum(labels.values()) / len(labels) <= 0.35


def test_file_numbers_are_shuffled_across_cars(snippets3):
    by_number = [snippets3[f"data/{n}.pkl"][1]["car"] for n in range(1, len(snippets3) + 1)]
    assert by_number != sorted(by_number)


def test_physical_sanity(snippets3, brand1):
    arrays = [a for a, _ in snippets3.values()] + [a for a, _ in _load_all(brand1).values()]
    for x in arrays:
        volt, current, soc, vmax, vmin, tmax, tmin, stamp = x.T
        assert (current <= 0).all()
        assert ((soc >= 0) & (soc <= 100)).all() and (np.diff(soc) >= 0).all()
        assert (vmax >= vmin).all() and (tmax >= tmin).all()
        assert np.allclose(np.diff(stamp), 10.0)
        assert (3.0 < vmin).all() and (vmax < 4.5).all()


def test_brand2_clock_and_cli(tmp_path, capsys):
    assert main(["--preset", "tiny", "--out", str(tmp_path), "--brand", "2"]) == 0
    brand_dir = tmp_path / "battery_brand2"
    array, meta = load_snippet(next((brand_dir / "train").glob("*.pkl")))
    assert np.array_equal(array[:, 7], np.arange(128) * 10.0)
    assert meta["car"] in CAR_IDS[2]
    assert main(["--preset", "tiny", "--out", str(tmp_path), "--brand", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_same_seed_same_data_other_seed_differs(tmp_path, snippets3):
    again = _load_all(generate("tiny", tmp_path / "again", seed=0))
    assert again.keys() == snippets3.keys()
    for name, (array, meta) in snippets3.items():
        assert np.array_equal(array, again[name][0]) and meta == again[name][1]
    other = _load_all(generate("tiny", tmp_path / "other", seed=1))
    common = sorted(set(other) & set(snippets3))
    assert not all(np.array_equal(other[k][0], snippets3[k][0]) for k in common)


def test_clear_faults_stand_out(tmp_path):
    brand_dir = generate("clear", tmp_path, seed=0)
    cell, temp, faulty = {}, {}, {}
    for array, meta in _load_all(brand_dir).values():
        cell.setdefault(meta["car"], []).append(np.max(array[:, 3] - array[:, 4]))
        temp.setdefault(meta["car"], []).append(np.max(array[:, 5] - array[:, 6]))
        faulty[meta["car"]] = meta["label"] == "10"
    # "In some of their snippets": a car's upper-quartile snippet, robust to rare normal glitches.
    cell_q = {c: np.percentile(v, 75) for c, v in cell.items()}
    temp_q = {c: np.percentile(v, 75) for c, v in temp.items()}
    normal_cell = max(cell_q[c] for c in faulty if not faulty[c])
    normal_temp = max(temp_q[c] for c in faulty if not faulty[c])
    sick = [c for c in faulty if faulty[c]]
    stand_out = [c for c in sick if cell_q[c] > normal_cell or temp_q[c] > normal_temp]
    assert len(stand_out) >= 0.8 * len(sick)


def test_existing_target_needs_overwrite(tmp_path):
    first = generate("tiny", tmp_path, seed=0)
    marker = first / "marker"
    marker.touch()
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate("tiny", tmp_path, seed=0)
    assert marker.exists()
    assert generate("tiny", tmp_path, seed=0, overwrite=True) == first
    assert not marker.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["battery_brand3"]


def test_failed_run_leaves_no_partial(tmp_path, monkeypatch):
    import src.data.synth as synth

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "_write_car", boom)
    with pytest.raises(RuntimeError):
        generate("tiny", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_preset_and_too_many_cars(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        generate("huge", tmp_path)
    with pytest.raises(ValueError, match="brand 2"):
        generate("small", tmp_path, brand=2)
