"""One job from specs, in process: ``python -m pytest tests/pipeline/test_run.py``."""

from __future__ import annotations

from src.cli.specs import run_spec
from src.pipeline.run import logged_result
from src.tracking.store import RunStore
from tests.conftest import FAST, compose_cfg, train_runs


def test_a_reused_baseline_is_paired_from_its_logged_units_not_scored_again(tiny_root, tmp_path):
    common = ["model=dyad_tiny", f"data.root={tiny_root}", "trainer.max_epochs=1", *FAST]
    done = train_runs(*common, "task.evaluation.n_boot=20", methods=["baseline", "dynamic"],
                      tmp=tmp_path)  # fmt: skip
    store = RunStore(f"sqlite:///{tmp_path}/mlflow.db")
    base = done["baseline"]
    spec = run_spec(compose_cfg(*common, "task.evaluation.n_boot=20", tmp=tmp_path))
    logged = logged_result(store, base.run_id, spec)
    assert logged is not None
    assert logged.metrics["test/auroc"] == base.result.metrics["test/auroc"]
    fresh = base.result.units.astype({"unit": str}).reset_index(drop=True)
    assert logged.units.equals(fresh.astype(logged.units.dtypes.to_dict()))
    other = run_spec(compose_cfg(*common, "task.evaluation.n_boot=21", tmp=tmp_path))
    assert logged_result(store, base.run_id, other) is None  # another protocol: score again
    # the method run's pairs carry the baseline's logged scores
    paired = done["dynamic"].result.tables["paired_units"].set_index("unit")
    scores = logged.units.set_index("unit")["value"]
    assert (paired["baseline"] == scores.loc[paired.index]).all()
