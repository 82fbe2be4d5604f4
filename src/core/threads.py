"""Torch's intra-op thread count, set for a block and restored after it.

Training, latency measurement and the tests pin threads for a stretch of work (another thread
count sums floats in another order, and times another machine); each used to save and restore the
setting by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the previous count after
    it (even on an exception). ``None`` leaves the setting as it is on entry; whatever the
    block sets is still undone on exit.

    Yields:
        The thread count in effect inside the block.

    Example:
        >>> with torch_threads(2):
        ...     model(batch)  # doctest: +SKIP
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
