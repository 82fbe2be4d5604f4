"""``python -m src.search``: a 3-trial search on the tiny model and data, as users run it (the
command line is the subject: Hydra finds the sweeper plugin and runs the trials through the
sweep's launcher): ``pytest tests/test_search.py``."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.board import load_runs
from tests.conftest import FAST, ROOT, run_cli
from tests.test_leaderboard import run_main

TINY = [
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=50",
    *[o for o in FAST if not o.startswith("benchmark.runtimes")],
]


def test_three_trials_are_child_runs_with_a_front_and_a_ready_command(tiny_root, tmp_path):
    args = [
        *TINY,
        f"data.root={tiny_root}",
        f"paths.data_dir={tmp_path}/data",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={tmp_path}/search",
        "search.trials=3",
        "search.sampler=random",
        "search.methods=[dynamic,static,prune]",
        "search.space.prune.method.sparsity.high=0.8",
        "search.space.prune.method.allocation=[uniform]",
        "search.timing.processes=2",  # each batch's trial timed in fresh processes, briefly
        "search.timing.rounds=2",
    ]
    proc = run_cli("src.search", *args, tmp=tmp_path)
    assert "search: 3 trials" in proc.stdout and "python -m src.train" in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = load_runs(f"sqlite:///{tmp_path}/mlflow.db", include_baselines=False)
    passes = runs[runs["tags.analysis"] == "timing"]  # one timing pass per batch of one trial
    parents = runs[runs["tags.method"].isna() & runs["tags.analysis"].isna()]
    (parent_id,) = parents.run_id
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.jobs_finished"] == "3"
    assert parent.data.tags["sweep.command"].startswith("python -m src.search")
    children = runs[(runs["tags.mlflow.parentRunId"] == parent_id) & runs["tags.method"].notna()]
    assert len(children[children["tags.method"] != "baseline"]) == 3  # + the baseline it trained
    assert set(children.status) == {"FINISHED"}
    table = pd.read_csv(
        client.download_artifacts(parent_id, "tables/search_trials.csv", str(tmp_path))
    )
    assert len(table) == 3 and table.on_front.any() and table.chosen.sum() == 1
    assert set(table.run_id) <= set(children.run_id)
    assert {"fidelity", "speedup", "speedup_low", "size", "separation_change"} <= set(table.columns)
    assert (
        "verdict" not in table and table.confirmatory_verdict.astype(str).str.len().gt(0).sum() == 1
    )
    assert set(table.speed_from) == {"fresh processes"} and len(passes) in (3, 4)  # + the front's
    assert set(passes["tags.mlflow.parentRunId"]) == {parent_id}
    assert "speedup: 3 trial(s) from fresh processes" in proc.stdout, proc.stdout[-2000:]
    assert parent.data.tags["search.confirmatory"].startswith("confirmatory test verdict: ")
    assert "alpha 0.025 per bound, k=1" in parent.data.tags["search.confirmatory"]
    assert parent.data.tags["search.selected_on"].startswith("selected on the tuning split")
    chosen = parent.data.tags["search.chosen_command"]
    assert chosen.startswith("python -m src.train") and "search." not in chosen
    assert "plots/search_front.png" in {a.path for a in client.list_artifacts(parent_id, "plots")}
    paths, error = run_main(
        f"sqlite:///{tmp_path}/mlflow.db",
        f"out_dir={tmp_path}/board",
        f"sweep_id={parent.data.tags['sweep_id']}",
    )
    assert error is None and "leaderboard.md" in paths  # the trials rank like any sweep's jobs


def _finished_trials(uri: str) -> int:
    try:
        runs = load_runs(uri, include_baselines=False)
    except Exception:  # the store is still being created
        return 0
    if runs.empty or "tags.method" not in runs:
        return 0
    return int(((runs.status == "FINISHED") & runs["tags.method"].notna()).sum())


@pytest.mark.slow
def test_a_search_killed_between_trials_resumes_where_it_stopped(tiny_root, tmp_path):
    """SIGKILL after the first trial finished, the same command again: the same parent run
    ends FINISHED with every trial of the budget once, and the study holds each once."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        *TINY,
        f"data.root={tiny_root}",
        f"paths.data_dir={tmp_path}/data",
        "trainer.enable_progress_bar=false",
        "search.trials=4",
        "search.sampler=random",
        "search.methods=[dynamic,static,prune]",
        "search.timing=null",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [sys.executable, "-m", "src.search", *args]
    first = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while _finished_trials(uri) < 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)  # the baseline, then the first trial
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = _finished_trials(uri) - 1
    assert 1 <= killed_at < 4
    proc = run_cli("src.search", *args, tmp=tmp_path)
    assert "resuming search search-" in proc.stdout
    runs = load_runs(uri, include_baselines=False)
    (parent_id,) = runs[runs["tags.method"].isna()].run_id  # no timing pass: search.timing=null
    parent = MlflowClient(uri).get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["search.resumed"] == "1"
    table = pd.read_csv(
        MlflowClient(uri).download_artifacts(parent_id, "tables/search_trials.csv", str(tmp_path))
    )
    assert len(table) == 4 and table.run_id.nunique() == 4
    trials = runs[runs.run_id.isin(table.run_id)]
    assert set(trials.status) == {"FINISHED"}
    assert set(trials["tags.mlflow.parentRunId"]) == {parent_id}
    study = optuna.load_study(
        study_name=parent.data.tags["search.study"],
        storage=f"sqlite:///{tmp_path}/mlflow-optuna.db",
    )
    launched = [t for t in study.trials if "overrides" in t.user_attrs]
    assert len(launched) == 4 and len({tuple(t.user_attrs["overrides"]) for t in launched}) == 4
    assert {t.user_attrs["run_id"] for t in launched} == set(table.run_id)
