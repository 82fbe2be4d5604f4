"""``python -m src.leaderboard`` end to end: ``python -m pytest tests/test_leaderboard.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize
from mlflow.tracking import MlflowClient

from src.cli import entry
from src.core import schema
from src.leaderboard import job
from tests.board.fakes import demo_store, new_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_store(tmp_path_factory.mktemp("demo"))


def cli(uri: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [sys.executable, "-m", "src.leaderboard", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def run_main(uri: str, *overrides: str):
    """The leaderboard job in this process; returns (paths or None, the error if any)."""
    with initialize(version_base="1.3", config_path=None):  # the config src.leaderboard stores
        cfg = compose("leaderboard", [f"tracking_uri={uri}", *overrides])
    entry.clear()
    paths = job(cfg)
    error = entry.failures()[-1] if entry.failures() else None
    entry.clear()
    return (None if error else paths), error


def test_empty_store_exits_2_with_one_line_and_writes_nothing(tmp_path):
    missing = cli(f"sqlite:///{tmp_path}/none/mlflow.db", f"out_dir={tmp_path}/out")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert missing.stderr.startswith("error: no MLflow store at sqlite:///")
    empty = new_store(tmp_path / "empty")
    paths, error = run_main(empty.uri, f"out_dir={tmp_path}/out")
    assert paths is None and "the store is empty" in error and "python -m src.train" in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "none").exists()


def test_sweep_board_is_logged_to_the_parent_run(demo, tmp_path):
    store, ids = demo
    out = tmp_path / "out"
    proc = cli(store.uri, "sweep_id=sweep-1", "data=battery", "model=dyad", f"out_dir={out}")
    assert proc.returncode == 0, proc.stderr
    title = "leaderboard: data battery (brand3), model dyad: test/auroc (higher is better)"
    assert title in proc.stdout
    assert f"logged to parent run {ids.sweep_parent}" in proc.stdout
    md = (out / "leaderboard.md").read_text()
    assert (
        f"`python -m src.leaderboard sweep_id=sweep-1 data=battery model=dyad out_dir={out}`" in md
    )
    assert "| dynamic |" in md and "| baseline |" in md and "| fp16 |" not in md  # not in sweep
    logged = MlflowClient(store.uri).list_artifacts(ids.sweep_parent, "leaderboard")
    assert sorted(Path(a.path).name for a in logged) == sorted(p.name for p in out.iterdir())


def test_tag_filters_select_runs(demo, tmp_path):
    store, _ = demo
    paths, error = run_main(store.uri, "data=digits", f"out_dir={tmp_path}/d")
    assert error is None
    md = paths["leaderboard.md"].read_text()
    assert "ranked by: test/accuracy" in md and "battery" not in md.split("| rank |")[1]
    paths, _ = run_main(
        store.uri, "data=battery", "method=static", "+tags.fold=[0,1]", f"out_dir={tmp_path}/s"
    )
    csv = paths["leaderboard.csv"].read_text()
    assert ",static," in csv and ",fp16," not in csv
    assert "runs: 4 used" in csv  # static and its baseline, folds 0 and 1
    for methods in ("method=[static,fp16]", "+tags.method=[static,fp16]"):  # a list: any of them
        paths, error = run_main(store.uri, "data=battery", methods, f"out_dir={tmp_path}/l")
        csv = paths["leaderboard.csv"].read_text()
        assert error is None and ",static," in csv and ",fp16," in csv and ",dynamic," not in csv
        assert "runs: 9 used" in csv  # static and fp16, and their baselines, folds 0 to 2


def test_no_match_names_the_filters(demo, tmp_path):
    store, _ = demo
    paths, error = run_main(
        store.uri, "data=battery", "data_variant=brand9", f"out_dir={tmp_path}/o"
    )
    assert paths is None
    assert "match data=battery, data_variant=brand9" in error and "change the filters" in error
    assert not (tmp_path / "o").exists()


def test_a_store_of_two_task_families_gives_a_board_each(demo, tmp_path):
    store, _ = demo
    paths, error = run_main(store.uri, f"out_dir={tmp_path}/both")
    assert error is None
    assert {"leaderboard-anomaly.md", "leaderboard-classification.md"} <= set(paths)
    assert "ranked by: test/auroc" in paths["leaderboard-anomaly.md"].read_text()
    assert "ranked by: test/accuracy" in paths["leaderboard-classification.md"].read_text()


def test_model_names_a_family(tmp_path):
    store = new_store(tmp_path / "s")
    for model in ("dyad_brand3", "dyad_tiny"):
        base = store.run(model=model, metrics={"test/auroc": 0.9})
        store.run(method="dynamic", model=model, baseline_run_id=base, metrics={"test/auroc": 0.8})
    paths, error = run_main(store.uri, "model=dyad", f"out_dir={tmp_path}/family")
    assert error is None and "runs: 4 used" in paths["leaderboard.csv"].read_text()
    paths, _ = run_main(store.uri, "model=dyad_tiny", f"out_dir={tmp_path}/one")
    assert "runs: 2 used" in paths["leaderboard.csv"].read_text()


def test_orphans_are_marked_failed_and_not_counted(tmp_path):
    store = new_store(tmp_path / "store")
    base = store.run(method="baseline", metrics={"test/auroc": 0.9})
    store.run(method="dynamic", baseline_run_id=base, metrics={"test/auroc": 0.88})
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    orphan = store.run(
        method="static",
        baseline_run_id=base,
        status="RUNNING",
        tags={schema.PROCESS: f"{socket.gethostname()}:{gone}"},
    )
    paths, error = run_main(store.uri, f"out_dir={tmp_path}/out")
    assert error is None and paths
    run = store.client.get_run(orphan)
    assert run.info.status == "FAILED" and "orphaned: its process" in run.data.tags[schema.ERROR]
    board = (tmp_path / "out" / "leaderboard.csv").read_text()
    assert "dynamic" in board and "static" not in board
