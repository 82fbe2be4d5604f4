"""The training loaders' batch order: a function of (seed, epoch) alone.

A shuffling generator carried from epoch to epoch makes epoch ``k``'s order depend on every
permutation drawn before it, so a training resumed from a checkpoint at epoch ``k`` would draw
other batches than one that never stopped. :class:`EpochShuffle` draws each epoch's permutation
from its own generator seeded with ``seed + epoch`` (as ``DistributedSampler`` does); Lightning
tells it the epoch (``set_epoch``) before every epoch, a resumed one included.

Under data-parallel training each process takes every ``world``-th index of that one permutation
(``trainer=ddp``, which turns off Lightning's own sampler wrapping): step ``i`` of the ranks
together is batch ``i`` of a single process at ``world`` times their batch size.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A random permutation of ``range(n)`` per epoch, reproducible from ``(seed, epoch)``.

    Args:
        n: Dataset length.
        seed: Base seed (the process's ``torch.initial_seed()``, set by ``seed_everything``).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed + self.epoch) % 2**63)
        order = torch.randperm(self.n, generator=generator).tolist()
        rank, world = _shard()
        if world > 1:  # pad as DistributedSampler does: every rank takes as many steps
            order = (order + order[: -self.n % world])[rank::world]
        return iter(order)

    def __len__(self) -> int:
        return -(-self.n // _shard()[1])


def _shard() -> tuple[int, int]:
    """``(rank, world size)`` of data-parallel training; ``(0, 1)`` in a single process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def epoch_shuffle(dataset) -> EpochShuffle:
    """The training sampler of ``dataset``, seeded by the process's seed."""
    return EpochShuffle(len(dataset), torch.initial_seed())
