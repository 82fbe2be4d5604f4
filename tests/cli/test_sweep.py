"""A multirun is one parent MLflow run with its jobs as children."""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_train


def test_multirun_nests_jobs_under_one_parent_and_survives_a_failed_job(tiny_root, tmp_path):
    proc = run_train(
        "-m",
        "data.fold=0,9",  # fold 9 does not exist: that job fails, the sweep goes on
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        "benchmark.iters=2",
        "benchmark.rounds=1",
        "benchmark.batch_sizes=[1,8]",
        "task.evaluation.n_boot=20",
        tmp=tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    parents = [r for r in runs if "sweep_id" in r.data.tags and "method" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.jobs_failed"] == "1"
    assert "data.fold=0,9" in parent.data.tags["sweep.overrides"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert [r.info.status for r in children] == ["FINISHED"]  # fold 9 failed before its run
    assert f"sweep_id={parent.data.tags['sweep_id']}" in proc.stdout  # the board's command
    assert {r.data.tags["sweep_id"] for r in children} == {parent.data.tags["sweep_id"]}


@pytest.mark.slow  # a fault path in a subprocess sweep, as tests/test_faults.py's
def test_an_aborted_sweep_leaves_no_run_running(tmp_path):
    proc = run_train("-m", "model=dyad_tiny", "model.hidden_sz=1,2", tmp=tmp_path, check=False)
    assert proc.returncode != 0 and "hidden_sz" in proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert [r.info.status for r in runs] == ["FAILED"]  # the parent; no job started
    assert "aborted" in runs[0].data.tags["error"]


def test_a_sweep_without_its_parent_run_fails_every_job_in_one_line(tmp_path, monkeypatch):
    import pytest
    from omegaconf import OmegaConf

    from src.cli.specs import run_spec
    from src.cli.sweep import MlflowSweep
    from src.core import schema
    from src.core.errors import ConfigError
    from tests.conftest import compose_cfg

    monkeypatch.setenv(schema.SWEEP_ERROR_ENV, "")  # restored (unset) after the test
    config = OmegaConf.create(
        {
            "logger": {"tracking_uri": f"file:{tmp_path}/mlruns", "experiment_name": "x"},
            "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}, "overrides": {"task": []}},
        }
    )
    MlflowSweep().on_multirun_start(config)  # Hydra would only warn if this raised
    with pytest.raises(ConfigError, match="could not open its MLflow parent run.*file store"):
        run_spec(compose_cfg(tmp=tmp_path))


def test_a_search_study_is_named_by_its_command_but_its_budget():
    from omegaconf import OmegaConf

    from src.cli.sweep import search_study

    def named(*overrides, trials=20, resume="auto", space=None):
        return search_study(
            OmegaConf.create(
                {
                    "logger": {"experiment_name": "e"},
                    "search": {"trials": trials, "resume": resume, "space": space or {"a": {}}},
                    "hydra": {"overrides": {"task": list(overrides)}},
                }
            )
        )

    first = named("model=dyad_tiny", "search.seed=1")
    assert first.startswith("search-")
    assert named("search.seed=1", "model=dyad_tiny", "search.trials=40", trials=40) == first
    assert named("model=dyad_tiny", "search.seed=1", "hydra.sweep.dir=/x") == first
    assert named("model=dyad_tiny", "search.seed=2") != first
    assert named("model=dyad_tiny", "search.seed=1", space={"b": {}}) != first  # conf changed
    never = named("model=dyad_tiny", "search.seed=1", resume="never")
    assert never.startswith(first) and never != named(
        "model=dyad_tiny", "search.seed=1", resume="never"
    )
    assert search_study(OmegaConf.create({"logger": {}})) is None
