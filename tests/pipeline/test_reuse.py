"""A chain's first step reused from the run that computed it:
``python -m pytest tests/pipeline/test_reuse.py``."""

from __future__ import annotations

from src.core import schema
from src.methods import method_config
from src.methods.chain import ChainConfig
from src.pipeline.reuse import settings
from src.tracking.store import RunStore
from tests.conftest import FAST, train_runs

CHAIN = "1_prune"


def _metrics(store: RunStore, run_id: str) -> dict:
    return store.get(run_id).data.metrics


def test_a_chain_reuses_its_first_step_and_gets_the_same_answer(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *FAST]
    common += ["task.evaluation.alpha=0.2", "task.evaluation.n_boot=20"]
    shared = tmp_path / "shared"
    done = train_runs(
        *common, methods=["baseline", "prune_structured", "prune_dynamic"], tmp=shared
    )
    store = RunStore(f"sqlite:///{shared}/mlflow.db")
    chain = store.get(done["prune_dynamic"].run_id).data
    assert chain.tags[schema.STEP_REUSED + CHAIN] == done["prune_structured"].run_id
    alone = train_runs(*common, methods=["baseline", "prune_dynamic"], tmp=tmp_path / "alone")
    other = RunStore(f"sqlite:///{tmp_path / 'alone'}/mlflow.db")
    computed = other.get(alone["prune_dynamic"].run_id).data
    assert schema.STEP_REUSED + CHAIN not in computed.tags  # nothing to reuse: computed here
    # bit for bit: the step's own metrics, the chain's result
    keys = [k for k in computed.metrics if k.startswith(("test/", f"chain/{CHAIN}/test/"))]
    assert keys and {k: chain.metrics[k] for k in keys} == {k: computed.metrics[k] for k in keys}
    pruned = _metrics(store, done["prune_structured"].run_id)["test/auroc"]
    assert chain.metrics[f"chain/{CHAIN}/test/auroc"] == pruned


def test_a_step_matches_a_method_run_by_its_settings_not_its_name():
    chain = ChainConfig(
        name="prune_dynamic", steps=[{"name": "prune", "structured": True}, {"name": "dynamic"}]
    )
    alone = method_config({"name": "prune_structured", "kind": "prune", "structured": True})
    assert settings(chain.steps[0]) == settings(alone)
    other = method_config({"name": "prune_structured", "kind": "prune", "sparsity": 0.25})
    assert settings(chain.steps[0]) != settings(other)
