"""Soak the group setup with faults (slow tier): ``pytest tests/tracking/test_soak.py -s``.

4 joblib workers run 42 short jobs on the tiny preset against an MLflow server on PostgreSQL
(basic auth, PostgreSQL's password), while the server is SIGKILLed twice and restarted and
PostgreSQL is restarted once; the same sweep is then run once more (finished jobs are reused).
The same jobs run fault-free on an embedded SQLite store first. Figures printed: runs lost,
left RUNNING, duplicated, artifacts that do not download, and whether the two boards agree.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.core import schema
from src.tracking.access import add_user
from tests.conftest import FAST, ROOT, run_cli
from tests.servers import mlflow_server, postgres

pytestmark = pytest.mark.slow

SEEDS = 14  # x 3 methods = 42 jobs (and 14 baselines trained on the way)
SWEEP = [
    "-m",
    "+method=dynamic,static,prune",
    f"seed=range(0,{SEEDS})",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=4",
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=20",
    *FAST,
    "trainer.enable_progress_bar=false",
    # one thread each: 4 workers x 2 threads on 2 cores spin in OpenMP's barriers (static
    # int8's latency phase took 54-75 s, not 0.5 s); this soak tests the store, not timings
    "trainer.threads=1",
    "benchmark.threads=1",
]
BOARD_COLUMNS = ["variant", "n", "verdict", "verdict (Holm)", "fidelity"]


def sweep(uri: str, tmp: Path, tiny_root: Path, name: str) -> subprocess.CompletedProcess:
    args = [
        *SWEEP,
        f"data.root={tiny_root}",
        f"paths.data_dir={tmp}/data",
        f"hydra.sweep.dir={tmp}/{name}",
        f"logger.tracking_uri={uri}",
    ]
    cmd = [sys.executable, "-m", "src.train", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)


def finished(client: MlflowClient) -> list:
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=5000) if ids else []
    return [r for r in runs if schema.METHOD in r.data.tags]


def faults(server, database, client: MlflowClient, log: list[str]) -> None:
    """SIGKILL the server after 10 and 30 finished runs, restart PostgreSQL after 45."""
    steps = [(10, "server"), (30, "server"), (45, "postgres")]
    for count, what in steps:
        while True:
            try:
                done = sum(r.info.status == "FINISHED" for r in finished(client))
            except Exception:  # noqa: BLE001 (the server may be restarting)
                done = -1
            if done >= count:
                break
            time.sleep(1)
        started = time.monotonic()
        if what == "server":
            server.kill()
            time.sleep(2)
            server.start()
        else:
            database.restart()
        log.append(
            f"{what} {'killed' if what == 'server' else 'restarted'} at {done} finished "
            f"runs, back in {time.monotonic() - started:.1f} s"
        )


def figures(client: MlflowClient, tmp: Path) -> dict:
    runs = finished(client)
    done = [r for r in runs if r.info.status == "FINISHED"]
    keys = [r.data.tags.get(schema.JOB_KEY) for r in done]
    broken = 0
    for run in done:
        try:
            client.download_artifacts(run.info.run_id, schema.MODEL_ARTIFACT, str(tmp))
        except Exception:  # noqa: BLE001
            broken += 1
    methods = pd.Series([r.data.tags[schema.METHOD] for r in done]).value_counts().to_dict()
    return {
        "finished": len(done),
        "running": sum(r.info.status == "RUNNING" for r in runs),
        "duplicates": len(keys) - len(set(keys)),
        "artifacts that do not download": broken,
        "by method": methods,
    }


def board(uri: str, out: Path) -> pd.DataFrame:
    run_cli(
        "src.leaderboard", f"tracking_uri={uri}", f"out_dir={out}", "log_to_parent=false", tmp=out
    )
    table = pd.read_csv(out / "leaderboard.csv", comment="#")
    return table[[c for c in BOARD_COLUMNS if c in table]].sort_values("variant")


def test_a_faulty_soak_loses_nothing_and_boards_like_a_clean_one(tiny_root, tmp_path, monkeypatch):
    # the fault-free soak: the same jobs on an embedded SQLite store
    (tmp_path / "clean").mkdir()
    clean_uri = f"sqlite:///{tmp_path}/clean/mlflow.db"
    clean = sweep(clean_uri, tmp_path / "clean", tiny_root, "first")
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    clean_runs = [r for r in finished(MlflowClient(clean_uri)) if r.info.status == "FINISHED"]
    tmp = tmp_path / "faulty"
    with (
        postgres() as database,
        mlflow_server(database.uri, tmp / "artifacts", tmp / "auth") as server,
    ):
        secret = add_user(server.uri, tmp / "auth", "soak", ["battery"]).read_text()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "soak")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret.split("password = ")[1].strip())
        client, log = MlflowClient(server.uri), []
        injector = threading.Thread(
            target=faults, args=(server, database, client, log), daemon=True
        )
        injector.start()
        started = time.monotonic()
        first = sweep(server.uri, tmp, tiny_root, "first")
        injector.join(timeout=600)
        again = sweep(server.uri, tmp, tiny_root, "again")  # the one rerun
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        faulty = {
            **figures(client, tmp),
            "first sweep exit": first.returncode,
            "jobs reused by the rerun": again.stdout.count("already done by run")
            + again.stderr.count("already done by run"),
            "seconds": round(time.monotonic() - started),
            "faults": log,
        }
        boards = {"clean": board(clean_uri, tmp_path / "clean" / "board")}
        boards["faulty"] = board(server.uri, tmp / "board")
    print(f"soak figures: fault-free {len(clean_runs)} runs FINISHED; with faults {faulty}")
    assert len(faulty["faults"]) == 3, faulty
    assert faulty["finished"] == len(clean_runs) == SEEDS * 4  # jobs + their baselines
    assert (
        faulty["running"] == faulty["duplicates"] == faulty["artifacts that do not download"] == 0
    )
    pd.testing.assert_frame_equal(
        boards["clean"].reset_index(drop=True), boards["faulty"].reset_index(drop=True)
    )
