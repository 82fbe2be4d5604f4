"""The training batch order: ``python -m pytest tests/data/test_sampling.py``."""

import pytest

from src.data import sampling
from src.data.sampling import EpochShuffle


def test_each_epoch_is_a_permutation_set_by_seed_and_epoch_alone():
    sampler = EpochShuffle(10, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(EpochShuffle(10, seed=3)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == list(range(10))
    resumed = EpochShuffle(10, seed=3)
    resumed.set_epoch(1)  # what Lightning does at a resumed epoch
    assert list(resumed) == list(sampler)


@pytest.mark.parametrize("n", [10, 11])
def test_ranks_shard_one_permutation_into_equal_steps(n, monkeypatch):
    whole = list(EpochShuffle(n, seed=0))
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(sampling, "_shard", lambda rank=rank: (rank, 2))
        shard = EpochShuffle(n, seed=0)
        shards.append(list(shard))
        assert len(shard) == len(shards[-1]) == -(-n // 2)
    padded = whole + whole[: -n % 2]
    assert [i for pair in zip(*shards, strict=True) for i in pair] == padded  # step by step
