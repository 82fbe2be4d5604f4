"""``python -m src.search``: a 3-trial search on the tiny model and data, as users run it (the
command line is the subject: Hydra finds the sweeper plugin and runs the trials through the
sweep's launcher): ``pytest tests/test_search.py``."""

import pandas as pd
from mlflow.tracking import MlflowClient

from src.board import load_runs
from tests.conftest import FAST, run_cli
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
    assert {"task", "speedup", "size", "verdict"} <= set(table.columns)
    assert set(table.speed_from) == {"fresh processes"} and len(passes) == 3
    assert set(passes["tags.mlflow.parentRunId"]) == {parent_id}
    assert "speedup: 3 trial(s) from fresh processes" in proc.stdout, proc.stdout[-2000:]
    chosen = parent.data.tags["search.chosen_command"]
    assert chosen.startswith("python -m src.train") and "search." not in chosen
    assert "plots/search_front.png" in {a.path for a in client.list_artifacts(parent_id, "plots")}
    paths, error = run_main(
        f"sqlite:///{tmp_path}/mlflow.db",
        f"out_dir={tmp_path}/board",
        f"sweep_id={parent.data.tags['sweep_id']}",
    )
    assert error is None and "leaderboard.md" in paths  # the trials rank like any sweep's jobs
