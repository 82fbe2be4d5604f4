"""A shared MLflow server on PostgreSQL under parallel sweeps:
``python -m pytest tests/tracking/test_server.py``.

The harness starts the distribution's PostgreSQL and ``mlflow server`` on free localhost ports
(``tests/servers.py``); two sweeps, one of them with parallel workers, write to it at once. Slow.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from src.core import schema
from src.tracking.access import add_user
from src.tracking.store import RunStore
from tests.conftest import FAST, ROOT, run_cli
from tests.servers import mlflow_server, postgres

pytestmark = pytest.mark.slow

COMMON = [
    "model=dyad_tiny",
    "trainer.max_epochs=1",
    "task.evaluation.n_boot=50",
    *FAST,
    "trainer.enable_progress_bar=false",
]
SWEEPS = {  # 6 jobs on 2 joblib workers, and 2 jobs on the basic launcher, at the same time
    "parallel": [
        "+method=dynamic,static,prune",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    ],
    "sequential": ["+method=dynamic,fp16", "seed=2"],
}


def _start(name: str, args: list[str], uri: str, tmp, tiny_root) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "src.train",
        "-m",
        *args,
        *COMMON,
        f"data.root={tiny_root}",
        f"paths.data_dir={tmp}/data",
        f"hydra.sweep.dir={tmp}/{name}",
        f"logger.tracking_uri={uri}",
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _copy_to_sqlite(source: MlflowClient, uri: str, tmp) -> None:
    """The same runs in a SQLite store: tags, params, latest metrics, status and the tables."""
    store = RunStore(uri)
    target = store.client
    ids, runs = {}, []
    for experiment in source.search_experiments():
        found = source.search_runs([experiment.experiment_id])
        if not found:  # "Default", released claims
            continue
        new = store.experiment_id(experiment.name)  # artifacts beside the copy, in tmp
        for run in found:
            copy = target.create_run(new, start_time=run.info.start_time)
            ids[run.info.run_id] = copy.info.run_id
            runs.append((run, copy.info.run_id))
    for run, new_id in runs:
        tags = {
            k: ids.get(v, v) if k in (schema.PARENT_RUN_ID, schema.BASELINE_RUN_ID) else v
            for k, v in run.data.tags.items()
        }
        params = {k: ids.get(v, v) for k, v in run.data.params.items()}
        metrics = [Metric(k, v, 0, 0) for k, v in run.data.metrics.items()]
        for start in range(0, len(metrics), 500):
            target.log_batch(new_id, metrics=metrics[start : start + 500])
        target.log_batch(
            new_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if any(a.path == "tables" for a in source.list_artifacts(run.info.run_id)):
            local = source.download_artifacts(run.info.run_id, "tables", str(tmp / new_id))
            target.log_artifacts(new_id, local, "tables")
        target.set_terminated(new_id, run.info.status, end_time=run.info.end_time)


def _board(uri: str, out) -> pd.DataFrame:
    run_cli("src.leaderboard", f"tracking_uri={uri}", f"out_dir={out}", tmp=out)
    board = pd.read_csv(out / "leaderboard.csv", comment="#")
    return board.drop(columns=[c for c in board if "run_id" in c])  # ids differ between stores


def _time_on_server(client: MlflowClient, uri: str, tmp) -> None:
    """``python -m src.timing`` on the joblib sweep, through the server: its jobs get the pass."""
    args = ["sweep_id=parallel", f"tracking_uri={uri}", "processes=2", "rounds=1", "iters=2"]
    proc = run_cli("src.timing", *args, "warmup=1", tmp=tmp)
    assert "speed: 2 fresh processes x 1 rounds" in proc.stdout, proc.stdout
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.sweep_id = 'parallel'"
    )
    method = {r.info.run_id: r.data.tags.get(schema.METHOD, schema.BASELINE) for r in runs}
    variants = [r for r in runs if method[r.info.run_id] != schema.BASELINE]
    (pass_id,) = {r.data.tags.get(schema.TIMING_RUN_ID) for r in variants}
    assert len(variants) == 6 and client.get_run(pass_id).info.status == "FINISHED"
    assert all("timing/eager/speedup_bs1" in r.data.metrics for r in variants)


def test_two_sweeps_on_a_postgres_backed_server_lose_nothing(tiny_root, tmp_path, monkeypatch):
    """As a group runs it: PostgreSQL with its password, the server with basic auth, and the
    sweeps, the timing pass and the leaderboard run by a user who may write to the experiment."""
    auth = tmp_path / "auth"
    with (
        postgres() as database,
        mlflow_server(database.uri, tmp_path / "artifacts", auth) as server,
    ):
        credentials = add_user(server.uri, auth, "group", ["battery"]).read_text()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "group")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", credentials.split("password = ")[1].strip())
        started = time.monotonic()
        procs = {
            name: _start(name, args, server.uri, tmp_path, tiny_root)
            for name, args in SWEEPS.items()
        }
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=1200)
            assert proc.returncode == 0, f"{name}:\n{out[-4000:]}"
            print(f"sweep {name}: {time.monotonic() - started:.0f} s")
        wall = time.monotonic() - started
        client = MlflowClient(server.uri)
        runs = [
            r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
        ]
        parents = {r.info.run_id: r for r in runs if schema.METHOD not in r.data.tags}
        jobs = [r for r in runs if schema.METHOD in r.data.tags]
        print(f"{len(jobs)} runs of {len(parents)} sweeps in {wall:.0f} s on PostgreSQL")
        assert {r.info.status for r in runs} == {"FINISHED"}
        assert len(parents) == 2 and len(jobs) == 6 + 2 + 3  # 8 jobs, 3 baselines (seeds 0-2)
        finished = sorted(p.data.tags[schema.SWEEP_JOBS_FINISHED] for p in parents.values())
        assert finished == ["2", "6"]
        assert {r.data.tags[schema.PARENT_RUN_ID] for r in jobs} == set(parents)
        baselines = [r for r in jobs if r.data.tags[schema.METHOD] == schema.BASELINE]
        assert sorted(r.data.tags[schema.SEED] for r in baselines) == ["0", "1", "2"]
        model = client.download_artifacts(jobs[0].info.run_id, "model/model.pt", str(tmp_path))
        assert torch.load(model, weights_only=True)  # artifacts come back through the server
        logs = "".join(p.read_text() for name in SWEEPS for p in (tmp_path / name).rglob("*.log"))
        assert logs.count("cached ") == 1  # three jobs loaded the fresh data at once: one built it
        _time_on_server(client, server.uri, tmp_path)
        on_server = _board(server.uri, tmp_path / "board-server")
        _copy_to_sqlite(client, f"sqlite:///{tmp_path}/copy.db", tmp_path)
    on_sqlite = _board(f"sqlite:///{tmp_path}/copy.db", tmp_path / "board-sqlite")
    pd.testing.assert_frame_equal(on_server, on_sqlite)
