"""Cache build and load throughput, side by side with reading the pickles one by one.

python -m benchmarks.data_loading                     # generated `small` preset
python -m benchmarks.data_loading --root DIR --brand 1  # real data (builds its cache once)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ensure_data, print_table, write_csv
from src.data import cache
from src.data.battery import SnippetBatches
from src.data.cache import open_store
from src.data.layout import find_brand
from src.data.normalizer import fit_normalizer
from src.data.safe_load import load_snippet
from src.models.dyad import CHANNELS_BRAND_A


def time_build(layout, workers: int) -> tuple[float, int]:
    """Seconds for a cold cache build (fresh folder) and the snippet count."""
    # Force the pool even below its size threshold, so the two rows compare like for like.
    threshold, cache._POOL_MIN_FILES = cache._POOL_MIN_FILES, 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            store = cache.open_store(layout, Path(tmp), workers=workers)
            return time.perf_counter() - started, len(store)
    finally:
        cache._POOL_MIN_FILES = threshold


def time_pickles(layout, limit: int) -> float:
    """Snippets/s reading pickles directly (what every run would pay without the cache)."""
    files = [f[0] for f in layout.scan_snippets()[:limit]]
    started = time.perf_counter()
    for path in files:
        load_snippet(path)
    return len(files) / (time.perf_counter() - started)


def time_batches(store, batch_size: int) -> float:
    """Snippets/s served as shuffled, normalised training batches from the memmap."""
    index = np.random.default_rng(0).permutation(len(store))
    data = SnippetBatches(
        store,
        index,
        CHANNELS_BRAND_A,
        fit_normalizer(store.snippets, index),
        lambda m: m.astype(np.float32),
    )
    started = time.perf_counter()
    for start in range(0, len(index), batch_size):
        data.__getitems__(list(range(start, min(start + batch_size, len(index)))))
    return len(index) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--root", default=None, help="real data root (default: generated)")
    parser.add_argument("--brand", type=int, default=3)
    parser.add_argument("--pickles", type=int, default=3000, help="files read one by one")
    args = parser.parse_args()
    layout = find_brand(ensure_data(args.preset, args.root, args.brand), args.brand)
    cold1, n = time_build(layout, workers=1)
    cold2, _ = time_build(layout, workers=2)
    with tempfile.TemporaryDirectory() as tmp:
        open_store(layout, Path(tmp))
        started = time.perf_counter()
        store = open_store(layout, Path(tmp))  # warm: fingerprint + memmap only
        warm = time.perf_counter() - started
        pickles, batches = time_pickles(layout, args.pickles), time_batches(store, 128)
    rows = [
        ("cache build, 1 process", f"{n / cold1:,.0f} snippets/s", f"{cold1:.2f} s"),
        ("cache build, 2 processes", f"{n / cold2:,.0f} snippets/s", f"{cold2:.2f} s"),
        ("warm open (fingerprint + memmap)", f"{n / warm:,.0f} snippets/s", f"{warm:.3f} s"),
        ("pickles one by one", f"{pickles:,.0f} snippets/s", "-"),
        ("memmap training batches", f"{batches:,.0f} snippets/s", "-"),
        ("ratio memmap / pickles", f"{batches / pickles:,.1f}x", "-"),
    ]
    header = ("what", "throughput", "time")
    print_table(f"data loading, {n:,} snippets of battery_brand{args.brand}", rows, header)
    source = "real" if args.root else args.preset
    write_csv(
        "data_loading", [source, f"brand{args.brand}", f"pickles{args.pickles}"], rows, header
    )


if __name__ == "__main__":
    main()
