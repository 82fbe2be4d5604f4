"""Data-parallel training on CPU (gloo, two spawned processes):
``python -m pytest tests/pipeline/test_ddp.py``. Slow: spawning costs seconds."""

import pytest

from src.core import schema
from src.train import train
from tests.conftest import FAST, compose_cfg, job_runs

pytestmark = pytest.mark.slow

TINY = ["model=dyad_tiny", "trainer.max_epochs=2", "task.evaluation.n_boot=50", *FAST]


def test_ddp_on_two_cpu_processes_trains_what_one_process_does(tiny_root, tmp_path):
    """Two ranks of 16 draw, step by step, the 32 snippets one process draws (the training
    sampler shards one permutation), so they take the same steps on the same data; what still
    differs is the VAE's noise (each rank draws its own stream), which moves the trained weights
    slightly: the threshold by about 1 %, the ranking of the test vehicles not at all."""
    single = train(
        compose_cfg(*TINY, f"data.root={tiny_root}", "data.batch_size=32", tmp=tmp_path / "single")
    )
    ddp = train(
        compose_cfg(
            *TINY,
            f"data.root={tiny_root}",
            "data.batch_size=16",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            tmp=tmp_path / "ddp",
        )
    )
    expected = {k: v for k, v in single.result.metrics.items() if k.startswith("test/")}
    got = {k: v for k, v in ddp.result.metrics.items() if k.startswith("test/")}
    threshold = "test/threshold"
    assert got.pop(threshold) == pytest.approx(expected.pop(threshold), rel=0.05)
    assert got == pytest.approx(expected, abs=1e-9)
    _, (run,) = job_runs(tmp_path / "ddp")
    assert run.data.tags[schema.TRAIN_DEVICE] == "cpu x2 (DDPStrategy)"
    assert run.data.params["trainer.strategy"] == "ddp_spawn"
    _, (alone,) = job_runs(tmp_path / "single")
    assert alone.data.tags[schema.TRAIN_DEVICE] == "cpu"
    losses = [run.data.metrics["train/loss_epoch"], alone.data.metrics["train/loss_epoch"]]
    assert losses[0] == pytest.approx(losses[1], rel=0.05)
    # Both trained the same snippets; the spawned workers' epochs are counted in the launcher.
    seen = [
        r.data.metrics[schema.TRAIN_THROUGHPUT] * r.data.metrics[schema.FIT_SECONDS]
        for r in (run, alone)
    ]
    assert seen[0] > 0 and seen[0] == pytest.approx(seen[1], rel=1e-6)
