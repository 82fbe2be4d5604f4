"""One progress bar for every phase that loops over batches or files.

Shown on an interactive terminal only, so logs and captured test output stay clean; the phase's
start and end lines (with its duration) go to the log file either way
(``src.core.lifecycle.phase``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    items: Iterable[T], desc: str, total: int | None = None, unit: str = "batch"
) -> Iterator[T]:
    """Iterate ``items`` with a transient terminal progress bar (none when stderr is not a TTY).

    Example:
        >>> for batch in progress(loader, "scoring"): ...
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    yield from tqdm(
        items, desc=desc, total=total, unit=unit, leave=False, disable=not sys.stderr.isatty()
    )
