"""Helpers shared by the benchmarks: data on disk and a results table."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from src.core.paths import ROOT


def ensure_data(preset: str, root: str | None, brand: int, seed: int = 0) -> Path:
    """``root`` if given (real data), else the generated preset under ``data/synthetic``."""
    from src.data.sources import synthetic_root

    if root:
        return Path(root)
    return synthetic_root(preset, ROOT / "data" / "synthetic", brand, seed)


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    table = Table(title=title)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)  # wide enough when piped to a file
    print(
        f"setup: torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}"
    )
