"""The released DyAD folder layout: brand folders, snippet folders, column names, vehicle labels.

Real and synthetic data share this one code path (``src.data.synth`` writes the same layout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.core.errors import UserError
from src.data.safe_load import safe_load

BRAND_CAR_IDS = {1: range(1, 199), 2: range(201, 251), 3: range(401, 501)}
SNIPPET_FOLDERS = ("train", "test", "data")
COLUMN_FILES = ("column.pkl", "columns.pkl")
LABEL_FILES = ("train_label.csv", "test_label.csv", "all_label.csv")
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


class DataLayoutError(UserError):
    """The data folder does not look like the DyAD release; the message says what to fix."""


@dataclass(frozen=True)
class BrandLayout:
    """Where one brand's files are.

    Attributes:
        root: The brand folder, e.g. ``<data.root>/battery_brand3``.
        brand: 1, 2 or 3.
        snippet_dirs: Existing snippet folders (``train``/``test`` or ``data``), pooled.
        columns: Channel names in array column order.
    """

    root: Path
    brand: int
    snippet_dirs: tuple[Path, ...]
    columns: tuple[str, ...]

    def scan_snippets(self) -> list[tuple[str, int, int]]:
        """Every ``<int>.pkl`` as ``(path, size, mtime_ns)``, by folder then integer name.

        One ``scandir`` pass: the stat results feed the cache fingerprint, so a changed, added or
        removed file is noticed without unpickling anything.
        """
        found = []
        for folder in self.snippet_dirs:
            entries = []
            with os.scandir(folder) as it:
                for entry in it:
                    stem, ext = os.path.splitext(entry.name)
                    if ext == ".pkl" and stem.isdigit() and entry.is_file():
                        stat = entry.stat()
                        entries.append((int(stem), entry.path, stat.st_size, stat.st_mtime_ns))
            found.extend((path, size, mtime) for _, path, size, mtime in sorted(entries))
        return found


def find_brand(root: str | Path, brand: int) -> BrandLayout:
    """Locate and validate one brand folder of the released layout.

    Raises:
        DataLayoutError: Missing root, unknown brand, no snippet folder or no column file.
    """
    if brand not in BRAND_CAR_IDS:
        raise DataLayoutError(f"data.brand={brand!r} is unknown; choose 1, 2 or 3")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(
            f"data.root={root} does not exist; point it at the folder that holds "
            f"battery_brand1/ battery_brand2/ battery_brand3/, or unset it to use generated data"
        )
    brand_dir = root / f"battery_brand{brand}"
    if not brand_dir.is_dir():
        found = sorted(p.name for p in root.glob("battery_brand*"))
        raise DataLayoutError(
            f"{brand_dir} not found (found {found or 'no battery_brand* folder'}); extract "
            f"battery_brand{brand}.tar.gz into data.root or pick another data.brand"
        )
    dirs = tuple(brand_dir / d for d in SNIPPET_FOLDERS if (brand_dir / d).is_dir())
    if not dirs:
        raise DataLayoutError(
            f"{brand_dir} has no snippet folder; expected train/ and test/ (brands 1, 2) or data/"
        )
    return BrandLayout(brand_dir, brand, dirs, tuple(read_columns(brand_dir)))


def read_columns(brand_dir: Path) -> list[str]:
    """Channel names from ``column.pkl`` or ``columns.pkl`` (the release spells it both ways)."""
    for name in COLUMN_FILES:
        path = brand_dir / name
        if path.is_file():
            columns = safe_load(path)
            if not (isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns)):
                raise DataLayoutError(f"{path} must hold a list of channel names")
            missing = [c for c in COLUMNS[:7] if c not in columns]
            if missing:
                raise DataLayoutError(f"{path} lacks channels {missing}; got {list(columns)}")
            return list(columns)
    raise DataLayoutError(
        f"{brand_dir} has neither column.pkl nor columns.pkl; copy it from the release"
    )


def read_labels(brand_dir: Path) -> pd.Series:
    """Vehicle labels (car -> 0 normal / 1 faulty) from every ``label/*.csv`` of the brand.

    Raises:
        DataLayoutError: No label file, bad columns, or one car with two different labels.
    """
    label_dir = Path(brand_dir) / "label"
    paths = [label_dir / n for n in LABEL_FILES if (label_dir / n).is_file()]
    if not paths:
        raise DataLayoutError(
            f"{label_dir} has no train_label.csv/test_label.csv/all_label.csv; copy label/ from "
            f"the release"
        )
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        if not {"car", "label"} <= set(frame.columns):
            raise DataLayoutError(f"{path} must have columns car,label; got {list(frame.columns)}")
        frames.append(frame[["car", "label"]])
    labels = pd.concat(frames).astype({"car": int, "label": int}).drop_duplicates()
    clash = labels[labels.car.duplicated(keep=False)]
    if len(clash):
        raise DataLayoutError(
            f"cars {sorted(set(clash.car))[:10]} have both labels in {label_dir}; fix the CSVs"
        )
    if not labels.label.isin([0, 1]).all():
        raise DataLayoutError(f"labels in {label_dir} must be 0 (normal) or 1 (faulty)")
    return labels.set_index("car").label.sort_index()
