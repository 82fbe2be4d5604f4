"""Shared fixtures and helpers. Every test's MLflow store, data and Hydra output live under
pytest's tmp dirs: nothing is written to the repo's ``mlruns/`` or ``data/``.

End-to-end tests compose the train config and run it in this process (lightning-hydra-template's
pattern: :func:`compose_cfg` then ``src.train.train(cfg)``); :func:`run_cli` starts a subprocess
only where the command line itself is the subject.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.cli.hydra_setup import register_configs

ROOT = Path(__file__).resolve().parents[1]
# Tests compose the apps' configs themselves (``compose("reproduce", ...)``), as the entry points
# would after registering: nothing registers at import.
register_configs()


@pytest.fixture(autouse=True, scope="session")
def _isolated_mlflow(tmp_path_factory):
    """Point MLflow at a throwaway SQLite store for the whole session."""
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    yield
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(autouse=True)
def _restore_torch_switches():
    """A Trainer(deterministic=True) flips a process-wide switch that int8 kernels refuse
    (quantized_resize_cpu_); no test may leak it (or a thread count) into the next."""
    import torch

    from src.core.threads import torch_threads

    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch_threads(None):
        yield
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(autouse=True)
def _forget_hydra():
    """Tests that compose a Hydra app set its process-wide HydraConfig; none may leak it."""
    yield
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """The ``tiny`` preset (brand 3 layout), generated once per session. Treat as read-only."""
    from src.data.synth import generate

    root = tmp_path_factory.mktemp("tiny")
    generate("tiny", root, brand=3, seed=0)
    return root


@pytest.fixture
def tiny_copy(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny data that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(tiny_root, dst)
    return dst


# Latency settings cut to a minimum: timing is the benchmarks' job, not the tests'.
FAST = [
    "benchmark.iters=2",
    "benchmark.rounds=1",
    "benchmark.warmup=1",
    "benchmark.batch_sizes=[1,8]",
    "benchmark.runtimes=[eager]",  # deployment runtimes have their own tests
]


def private(tmp: Path) -> list[str]:
    """Overrides that keep a run's store, data and outputs in ``tmp``."""
    return [
        f"logger.tracking_uri=sqlite:///{tmp}/mlflow.db",
        f"paths.data_dir={tmp}/data",  # caches and generated data stay out of the repo
        "trainer.enable_progress_bar=false",
    ]


def compose_cfg(*overrides: str, tmp: Path, config: str = "train"):
    """The train config of ``python -m src.train <overrides>`` (or ``config``, an app's config
    built on it), private to ``tmp``."""
    from src.cli.jobs import composed

    return composed([*private(tmp), *overrides], tmp / "out", config)


def train_runs(*overrides: str, methods=("baseline",), tmp: Path) -> dict:
    """Run ``python -m src.train [+method=M] <overrides>`` in process for each method (baseline
    first); the outcomes by method."""
    from src.cli.jobs import train_methods

    return train_methods([*private(tmp), *overrides], list(methods), tmp / "out")


def run_cli(module: str, *args: str, tmp: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in a subprocess with the private store of ``tmp``."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def run_train(*overrides: str, tmp: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m src.train`` in a subprocess with a private store and output dir."""
    flags = [o for o in overrides if o.startswith("-")]  # argparse wants flags before overrides
    args = [
        *flags,
        f"hydra.run.dir={tmp}/out",
        f"hydra.sweep.dir={tmp}/multirun",
        f"paths.data_dir={tmp}/data",
        "trainer.enable_progress_bar=false",
        *(o for o in overrides if not o.startswith("-")),
    ]
    if not any(o.startswith("benchmark.runtimes=") for o in args):
        args.append("benchmark.runtimes=[eager]")  # deployment runtimes have their own tests
    return run_cli("src.train", *args, tmp=tmp, check=check)


def job_runs(tmp: Path):
    """``(client, runs)`` of the jobs in a test's store: a sweep's parent run (no ``method``
    tag) is left out."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    ids = [e.experiment_id for e in client.search_experiments()]
    return client, [r for r in client.search_runs(ids) if "method" in r.data.tags]
