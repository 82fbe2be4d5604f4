"""Helpers shared by the benchmarks: data on disk, a results table, and its CSV file.

Every benchmark prints its table and writes the same rows to ``benchmarks/results/`` as one flat
CSV named by the benchmark and its setup (timm's results files): ``runtimes-all-t2.csv`` is
``benchmarks.runtimes --part all`` timed on 2 threads. README figures are read from those files.
"""

from __future__ import annotations

import csv
import os
import platform
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from src.core.paths import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
RESULTS_ENV = "BENCHMARK_RESULTS"  # another folder for the files (smoke runs, scratch setups)


def ensure_data(preset: str, root: str | None, brand: int, seed: int = 0) -> Path:
    """``root`` if given (real data), else the generated preset under ``data/synthetic``."""
    from src.data.sources import synthetic_root

    if root:
        return Path(root)
    return synthetic_root(preset, ROOT / "data" / "synthetic", brand, seed)


def machine() -> dict[str, str]:
    """Where a table was measured: torch version, torch threads now, processor."""
    return {
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "cpu": platform.processor() or platform.machine(),
    }


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    table = Table(title=title)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)  # wide enough when piped to a file
    setup = machine()
    print(f"setup: torch {setup['torch']}, threads {setup['threads']}, {setup['cpu']}")


def results_name(benchmark: str, setup: Iterable[object]) -> str:
    """``runtimes-all-t2.csv``: the benchmark and its salient settings, lower case, each token's
    other characters as ``_``."""
    tokens = [re.sub(r"[^a-z0-9.]+", "_", str(t).lower()).strip("_") for t in (benchmark, *setup)]
    return "-".join(t for t in tokens if t) + ".csv"


def write_csv(
    benchmark: str,
    setup: Iterable[object],
    rows: Sequence[Sequence[object]],
    header: Sequence[str],
    folder: str | Path | None = None,
) -> Path:
    """Write a printed table's rows as ``<folder>/<benchmark>-<setup>.csv``.

    One line per row, the table's header as snake_case column names, and :func:`machine`'s
    columns (torch, threads, cpu) on every line, so a file says where it was measured. A file
    of the same benchmark and setup is replaced.

    Args:
        benchmark: The benchmark's module name (``runtimes``).
        setup: Its salient settings, in order (``["all", "t2"]``).
        rows: The rows as printed.
        header: The printed column names.
        folder: Where to write; default ``$BENCHMARK_RESULTS``, else ``benchmarks/results``.

    Returns:
        The file written.

    Raises:
        ValueError: A row has another number of cells than the header.
    """
    bad = [row for row in rows if len(row) != len(header)]
    if bad:
        raise ValueError(f"{benchmark}: rows of {len(bad[0])} cells under {len(header)} columns")
    folder = Path(folder or os.environ.get(RESULTS_ENV) or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / results_name(benchmark, setup)
    where = machine()
    columns = [re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") for name in header]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*columns, *where])
        writer.writerows([*row, *where.values()] for row in rows)
    print(f"results: {path}")
    return path
