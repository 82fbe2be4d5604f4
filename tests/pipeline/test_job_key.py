"""An identical job is not run twice: its key is the content of what decides its results, and
an interrupted or repeated sweep reuses what FINISHED (``rerun=true`` runs it again)."""

from __future__ import annotations

import dataclasses

from src.cli.specs import run_spec
from src.core import schema
from src.tracking.store import RunStore
from tests.conftest import FAST, compose_cfg, train_runs


def key(tmp, *overrides: str) -> str:
    return run_spec(compose_cfg("model=dyad_tiny", *overrides, tmp=tmp)).job_key


def test_the_key_tells_apart_what_differs_and_ignores_where_it_writes(tmp_path):
    base = key(tmp_path)
    assert len(base) == 64  # SHA-256 of the canonical config: no truncated prefix to collide
    near = [
        ("optim.lr=0.005000000001",),  # one float digit
        ("+method=prune", "method.sparsity=0.5000001"),
        ("seed=1",),
        ("data.fold=1",),
        ("benchmark.runtimes=[eager]",),
        ("task.evaluation.n_boot=1001",),
    ]
    keys = [key(tmp_path, *o) for o in near]
    assert len({base, *keys}) == len(near) + 1
    same = ("trainer.enable_progress_bar=false", "trainer.resume=never", "rerun=true",
            f"logger.tracking_uri=sqlite:///{tmp_path}/other.db", "run_name=x")  # fmt: skip
    assert all(key(tmp_path, o) == base for o in same)
    # another version of the code is another job; so is another method version
    spec = run_spec(compose_cfg("model=dyad_tiny", tmp=tmp_path))
    assert dataclasses.replace(spec, code=spec.code + "x").job_key != spec.job_key
    # the baseline trained on the way to a method run is the baseline job
    method = run_spec(compose_cfg("model=dyad_tiny", "+method=dynamic", tmp=tmp_path))
    assert method.as_baseline().job_key == base != method.job_key


def test_a_finished_job_is_reused_and_rerun_true_runs_it_again(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *FAST,
              "task.evaluation.n_boot=20"]  # fmt: skip
    first = train_runs(*common, methods=["baseline"], tmp=tmp_path)["baseline"]
    again = train_runs(*common, methods=["baseline"], tmp=tmp_path)["baseline"]
    assert again.run_id == first.run_id and again.model is None  # not trained again
    assert again.result.metrics["test/auroc"] == first.result.metrics["test/auroc"]
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    assert store.get(first.run_id).data.tags[schema.JOB_KEY] == key(tmp_path, *common)
    forced = train_runs(*common, "rerun=true", methods=["baseline"], tmp=tmp_path)["baseline"]
    assert forced.run_id != first.run_id and forced.model is not None
