"""``python -m src.ship`` and ``mlflow models serve`` end to end, on a tiny sweep (slow tier):
``pytest tests/ship/test_ship.py -m slow``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.data.layout import read_columns
from src.data.safe_load import load_snippet
from src.serve.anomaly import frame_from_arrays
from tests.conftest import job_runs, run_cli, run_train
from tests.servers import free_port, mlflow_server

SWEEP = [
    "-m",
    "+method=baseline,static,prune_structured",
    "model=dyad_tiny",
    "trainer.max_epochs=2",
    "task.evaluation.n_boot=20",
    "benchmark.iters=2",
    "benchmark.rounds=1",
    "benchmark.batch_sizes=[1,8]",
    "benchmark.runtimes=[eager,onnxruntime]",
]
NAME = "dyad_tiny-battery-brand3"


@pytest.fixture(scope="module")
def sweep(tiny_root, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ship")
    run_train(*SWEEP, f"data.root={tiny_root}", tmp=tmp)
    run_cli("src.leaderboard", "sweep_id=multirun", f"out_dir={tmp}/board", tmp=tmp)
    return tmp


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def vehicles(root: Path, cars: list[int]) -> pd.DataFrame:
    """The cars' snippets read from the released files, as the served frame."""
    brand = root / "battery_brand3"
    arrays, owners, ids = [], [], []
    for path in sorted((brand / "data").glob("*.pkl"), key=lambda p: int(p.stem)):
        array, meta = load_snippet(path)
        if int(meta["car"]) in cars:
            arrays.append(array)
            owners.append(int(meta["car"]))
            ids.append(int(path.stem))
    return frame_from_arrays(np.array(owners), np.stack(arrays), read_columns(brand), ids)


@pytest.mark.slow
def test_ship_registers_a_variant_with_its_verdict_and_serves_it(sweep, tiny_root):
    bad = run_cli("src.ship", "sweep_id=multirun", "variant=fp16", tmp=sweep, check=False)
    assert "variant=fp16 is not on this board" in one_line_error(bad)
    bad = run_cli("src.ship", "sweep_id=nope", tmp=sweep, check=False)
    one_line_error(bad)
    bad = run_cli(
        "src.ship", "sweep_id=multirun", "variant=static", "runtime=compile", tmp=sweep, check=False
    )
    assert "runtime=compile cannot serve static" in one_line_error(bad)

    proc = run_cli(
        "src.ship", "sweep_id=multirun", "variant=prune_structured", "runtime=eager", tmp=sweep
    )
    assert f"registered {NAME} version 1 (prune_structured, eager" in proc.stdout, proc.stdout
    client = MlflowClient(f"sqlite:///{sweep}/mlflow.db")
    version = client.get_model_version_by_alias(NAME, "candidate")
    assert str(version.version) == "1"
    assert "champion=force" in version.tags["champion.decision"]  # named: not champion by itself
    _, runs = job_runs(sweep)
    run = next(r for r in runs if r.data.tags["method"] == "prune_structured")
    tags = version.tags
    assert tags["source_run_id"] == run.info.run_id == version.run_id
    assert tags["data_fingerprint"] == run.data.tags["data_fingerprint"]
    assert tags["verdict.alpha"] == "0.025" and tags["verdict.k"] == "2"
    assert tags["verdict"] in version.description and tags["reason"] in version.description
    assert (
        tags["command"].startswith("python -m src.train ")
        and "+method=prune_structured" in (tags["command"])
    )
    assert run.outputs.model_outputs, "the run page lists the logged model"

    # served: two test vehicles answer as the run's own evaluation did
    scores = pd.read_csv(
        client.download_artifacts(run.info.run_id, "tables/vehicle_scores.csv", str(sweep))
    )
    test = scores[scores.role == "test"]
    cars = [int(g.car.iloc[0]) for _, g in test.groupby("label")]
    with served(sweep, f"models:/{NAME}@candidate") as url:
        status, body = post(url, vehicles(tiny_root, cars))
        assert status == 200, body
        answer = pd.DataFrame(json.loads(body)["predictions"]).set_index("car")
        expected = test.set_index("car").loc[cars]
        np.testing.assert_allclose(answer.loc[cars, "score"], expected.robust_score, rtol=1e-5)
        assert (answer.loc[cars, "flag"] == expected.predicted).all()
        assert set(answer.version) == {"1"} and set(answer.name) == {NAME}
        frame = vehicles(tiny_root, cars[:1])
        for broken, words in (
            (frame.drop(columns=["volt"]), "lacks columns ['volt']"),
            (frame.assign(volt="x"), "volt"),
            (frame[frame.snippet == frame.snippet.iloc[0]], "snippet(s); the score needs"),
            (frame.iloc[:100], "do not have 128 rows"),
        ):
            status, body = post(url, broken)
            message = json.loads(body)["message"]
            assert 400 <= status < 500 and words in message, (status, body[-2000:])
            assert "\n" not in message, message

    # champion: only by override for a named variant, then by the rule on the same units
    forced = run_cli(
        "src.ship",
        "sweep_id=multirun",
        "variant=prune_structured",
        "runtime=eager",
        "champion=force",
        tmp=sweep,
    )
    assert "champion by override (no champion before)" in forced.stdout, forced.stdout
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    rival = run_cli("src.ship", "sweep_id=multirun", "variant=static", "runtime=eager", tmp=sweep)
    decision = client.get_model_version(NAME, "3").tags["champion.decision"]
    assert decision.startswith("vs champion version 2 on 7 units: "), decision
    assert f"champion: {decision}" in rival.stdout
    moved = str(client.get_model_version_by_alias(NAME, "champion").version) == "3"
    assert moved == (
        " non-inferior" in decision or ": identical" in decision or ": superior" in decision
    )
    if moved:
        assert str(client.get_model_version_by_alias(NAME, "previous-champion").version) == "2"


def post(url: str, frame: pd.DataFrame) -> tuple[int, str]:
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class served:
    """``mlflow models serve -m <uri> --env-manager local`` on a free port, as a user types it
    (with the venv's bin on PATH, where MLflow finds uvicorn)."""

    def __init__(self, tmp: Path, uri: str) -> None:
        self.tmp, self.uri, self.port = tmp, uri, free_port()

    def __enter__(self) -> str:
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.tmp}/mlflow.db",
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        }
        cmd = [
            "mlflow",
            "models",
            "serve",
            "-m",
            self.uri,
            "-p",
            str(self.port),
            "--env-manager",
            "local",
        ]
        self.log = open(self.tmp / "serve.log", "w")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.tmp / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    return url
            except OSError:
                time.sleep(0.5)
        raise AssertionError((self.tmp / "serve.log").read_text()[-3000:])

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_verdicts_the_dataset_and_the_registered_version(sweep):
    """The sweep's parent run, a child run and the registered version, rendered in headless
    Chromium (the distribution's) from an MLflow server on the sweep's store. The screenshots
    stay in the test's folder (printed)."""
    from tests.browser import MLFLOW_UI_STORAGE, Browser, chromium_path

    if chromium_path() is None:
        assert not os.environ.get("COMPRESSLAB_REQUIRE_CHROMIUM"), "apt-get install chromium"
        pytest.skip("no Chromium: apt-get install -y chromium")
    run_cli("src.ship", "sweep_id=multirun", "variant=prune_structured", "runtime=eager",
            "name=ui-check", tmp=sweep)  # fmt: skip
    client, runs = job_runs(sweep)
    child = next(r for r in runs if r.data.tags["method"] == "prune_structured")
    parent, experiment = child.data.tags["mlflow.parentRunId"], child.info.experiment_id
    version = client.get_model_version_by_alias("ui-check", "candidate")
    shots = sweep / "screenshots"
    # the user's own view: no workflow switch, only the telemetry and assistant pop-ups closed
    storage = {k: v for k, v in MLFLOW_UI_STORAGE.items() if "workflowType" not in k}
    pages = [
        ("experiment", f"/experiments/{experiment}/runs", ["Run Name", "matching runs"]),
        ("parent", f"/experiments/{experiment}/runs/{parent}", ["Child runs", "multirun"]),
        (
            "board",
            f"/experiments/{experiment}/runs/{parent}/artifacts/leaderboard/leaderboard.html",
            ["verdict", "prune_structured", "inconclusive", "Holm"],
        ),
        (
            "child",
            f"/experiments/{experiment}/runs/{child.info.run_id}",
            ["battery-brand3", child.data.tags["data_fingerprint"], "Logged models", "ui-check"],
        ),
        (
            "version",
            f"/models/ui-check/versions/{version.version}",
            ["candidate", "verdict.alpha", "0.025", "source_run_id", child.info.run_id],
        ),
    ]
    with mlflow_server(f"sqlite:///{sweep}/mlflow.db", sweep / "server-artifacts") as server:
        with Browser(local_storage=storage) as browser:
            for stem, route, words in pages:
                text = browser.render(f"{server.uri}/#{route}", shots / f"{stem}.png", words)
                (shots / f"{stem}.txt").write_text(text)
                assert "Traces overview" not in text, f"{stem} opened the GenAI view"
    print(f"screenshots: {shots}")


@pytest.mark.slow
def test_the_board_chooses_an_image_classifier_that_answers_per_image(tmp_path):
    run_train("-m", "+method=baseline,dynamic", "data=digits", "model=cnn_tiny",
              "trainer.max_epochs=1", "benchmark.iters=2", "benchmark.rounds=1",
              "benchmark.batch_sizes=[1,8]", tmp=tmp_path)  # fmt: skip
    proc = run_cli("src.ship", "sweep_id=multirun", tmp=tmp_path, check=False)
    client, runs = job_runs(tmp_path)
    dynamic = next(r for r in runs if r.data.tags["method"] == "dynamic")
    if proc.returncode != 0:  # the board did not show dynamic non-inferior on this draw
        assert "no variant on this board's Pareto front" in one_line_error(proc)
        proc = run_cli("src.ship", "sweep_id=multirun", "variant=dynamic", tmp=tmp_path)
    assert "registered cnn_tiny-digits version 1 (dynamic, eager" in proc.stdout, proc.stdout
    assert "labels equal" in proc.stdout
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    model = mlflow.pyfunc.load_model("models:/cnn_tiny-digits@candidate")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 1, 32, 32), dtype=np.uint8)
    together = model.predict(images)
    alone = pd.concat([model.predict(images[i : i + 1]) for i in range(4)], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)  # an answer ignores the rest of the request
    assert {"label", "p_0", "p_9", "name", "version"} <= set(together.columns)
    np.testing.assert_allclose(together.filter(like="p_").sum(axis=1), 1.0, rtol=1e-5)
    assert client.get_model_version("cnn_tiny-digits", "1").run_id == dynamic.info.run_id
