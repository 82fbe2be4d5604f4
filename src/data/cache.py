"""Packed, memory-mapped snippet cache: scan and unpickle the release once, then reuse it.

The real brand 1 holds 476,739 pickles; unpickling them every run costs many minutes. On first use
we stream every snippet into one float32 file (N, 128, C) plus small metadata arrays, keyed by a
fingerprint of the source files (path, size, mtime). Later runs memory-map it. When any source
file changes, appears or disappears, the fingerprint changes and the cache is rebuilt.

A build writes into ``<key>.partial-<pid>`` and is renamed into place only when complete, so a
crashed build is never mistaken for a finished cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from src.core.errors import first_line
from src.data.layout import BrandLayout, DataLayoutError
from src.data.safe_load import load_snippet

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SNIPPET_LENGTH = 128
_POOL_MIN_FILES = 50_000  # below this, worker start-up costs more than it saves


@dataclass(frozen=True)
class SnippetStore:
    """A brand's snippets, memory-mapped, with per-snippet metadata arrays (same order).

    Attributes:
        snippets: float32 (N, 128, C), read-only memmap in ``columns`` order.
        car: Vehicle id per snippet.
        label: 0 normal / 1 faulty per snippet (first character of the released label).
        mileage: Odometer per snippet.
        segment: Charging-session id per snippet.
        columns: Channel names.
        manifest: Build facts (counts, skips, timings, fingerprint).
    """

    snippets: np.ndarray
    car: np.ndarray
    label: np.ndarray
    mileage: np.ndarray
    segment: np.ndarray
    columns: tuple[str, ...]
    manifest: dict

    def __len__(self) -> int:
        return len(self.car)


def open_store(layout: BrandLayout, cache_root: str | Path, workers: int = 1) -> SnippetStore:
    """Memory-map the cache for ``layout``, building it first if missing or stale.

    Args:
        layout: The brand folder to read.
        cache_root: Folder for caches; one sub-folder per (source folder, brand).
        workers: Processes that unpickle during a build (used for large builds only).
    """
    files = layout.scan_snippets()
    if not files:
        raise DataLayoutError(f"{layout.root} holds no <int>.pkl snippet files; check data.root")
    fingerprint = _fingerprint(layout, files)
    source_key = hashlib.sha1(str(layout.root.resolve()).encode()).hexdigest()[:10]
    parent = Path(cache_root) / f"brand{layout.brand}-{source_key}"
    final = parent / fingerprint
    parent.mkdir(parents=True, exist_ok=True)
    with _locked(parent / ".lock"):
        if not (final / "manifest.json").is_file():
            _build(layout, files, final, fingerprint, workers)
            _remove_stale(parent, keep=final.name)
    return _open(final)


def _fingerprint(layout: BrandLayout, files: list[tuple[str, int, int]]) -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION}|{','.join(layout.columns)}".encode())
    root = str(layout.root)
    for path, size, mtime in files:
        digest.update(f"{os.path.relpath(path, root)}|{size}|{mtime}\n".encode())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds of one cache across processes (parallel sweep jobs)."""
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(layout, files, final: Path, fingerprint: str, workers: int) -> None:
    tmp = final.with_name(f"{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    try:
        counts = _write_snippets(layout, [f[0] for f in files], tmp, workers)
        manifest = dict(
            version=CACHE_VERSION,
            fingerprint=fingerprint,
            source=str(layout.root),
            columns=list(layout.columns),
            n_files=len(files),
            build_seconds=round(time.perf_counter() - started, 3),
            **counts,
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if counts["n_skipped_nonfinite"]:
        log.warning(
            "skipped %d snippet(s) holding NaN/inf, e.g. %s",
            counts["n_skipped_nonfinite"],
            counts["skipped_examples"][:3],
        )
    log.info(
        "cached %d snippets in %.1fs at %s", counts["n_snippets"], manifest["build_seconds"], final
    )


def _write_snippets(layout: BrandLayout, paths: list[str], out: Path, workers: int) -> dict:
    """Stream snippets into ``out/snippets.f32`` and metadata arrays; return counts."""
    n_cols = len(layout.columns)
    data = np.memmap(
        out / "snippets.f32", np.float32, "w+", shape=(len(paths), SNIPPET_LENGTH, n_cols)
    )
    car, label = np.empty(len(paths), np.int64), np.empty(len(paths), np.int8)
    mileage, segment = np.empty(len(paths), np.float64), np.empty(len(paths), "U32")
    skipped, n = [], 0
    desc = f"caching battery_brand{layout.brand}"
    items = tqdm(_read_all(paths, n_cols, workers), total=len(paths), desc=desc)
    for path, item in zip(paths, items, strict=True):
        if item is None:
            skipped.append(os.path.relpath(path, layout.root))
            continue
        data[n], car[n], label[n], mileage[n], segment[n] = item
        n += 1
    data.flush()
    del data
    os.truncate(out / "snippets.f32", n * SNIPPET_LENGTH * n_cols * 4)
    np.savez(
        out / "meta.npz",
        car=car[:n],
        label=label[:n],
        mileage=mileage[:n],
        segment=segment[:n],
    )
    return dict(n_snippets=n, n_skipped_nonfinite=len(skipped), skipped_examples=skipped[:20])


def _read_all(paths: list[str], n_cols: int, workers: int) -> Iterator:
    if workers <= 1 or len(paths) < _POOL_MIN_FILES:
        yield from (_read_one(p, n_cols) for p in paths)
        return
    # spawn, not fork: a forked child of a process that already ran OpenMP regions can hang.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_ReadOne(n_cols), paths, chunksize=256)


class _ReadOne:
    """Picklable ``_read_one`` with the column count bound, for ``Pool.imap``."""

    def __init__(self, n_cols: int):
        self.n_cols = n_cols

    def __call__(self, path: str):
        return _read_one(path, self.n_cols)


def _read_one(path: str, n_cols: int):
    """One snippet as (array, car, label, mileage, segment), or None if it holds NaN/inf."""
    array, meta = load_snippet(path)
    if array.shape != (SNIPPET_LENGTH, n_cols):
        raise DataLayoutError(
            f"{path}: array shape {array.shape}, expected ({SNIPPET_LENGTH}, {n_cols}) as in the "
            f"release; remove the file or fix the column file"
        )
    missing = {"label", "car", "mileage"} - set(meta)
    if missing:
        raise DataLayoutError(f"{path}: metadata lacks {sorted(missing)}; not a DyAD snippet")
    try:
        array = array.astype(np.float32)
    except (TypeError, ValueError) as err:
        raise DataLayoutError(
            f"{path}: holds values that are not numbers ({first_line(err, 80)}); remove the "
            "file or re-extract it from the release"
        ) from None
    if not np.isfinite(array).all():
        return None
    label = str(meta["label"]).strip("'")[:1]
    if label not in ("0", "1"):
        raise DataLayoutError(f"{path}: label {meta['label']!r} is not '00' or '10'")
    return (
        array,
        int(meta["car"]),
        int(label),
        float(meta["mileage"]),
        str(meta.get("charge_segment", "")),
    )


def _remove_stale(parent: Path, keep: str) -> None:
    """Caches of older source versions are dead weight (a brand-1 cache is ~2 GB)."""
    for child in parent.iterdir():
        if child.is_dir() and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)


def _open(folder: Path) -> SnippetStore:
    manifest = json.loads((folder / "manifest.json").read_text())
    meta = np.load(folder / "meta.npz", allow_pickle=False)
    shape = (manifest["n_snippets"], SNIPPET_LENGTH, len(manifest["columns"]))
    snippets = np.memmap(folder / "snippets.f32", np.float32, "r", shape=shape)
    return SnippetStore(
        snippets,
        meta["car"],
        meta["label"],
        meta["mileage"],
        meta["segment"],
        tuple(manifest["columns"]),
        manifest,
    )
