"""A runtime is a plugin: one registered from this test alone (as OpenVINO or TensorRT would be)
is deployed, checked, timed and shipped by real train jobs:
``python -m pytest tests/runtimes/test_plugin.py``.
"""

from pathlib import Path

import mlflow
import pytest
import torch
from torch import nn

from src.core import schema
from src.core.paths import ROOT
from src.runtimes.base import (
    RUNTIMES,
    BehindEager,
    DeployContext,
    Deployed,
    register_runtime,
)
from tests.conftest import FAST, train_runs

TOY = "toyrt"  # a name nothing in src/ or conf/ knows
ARTIFACT = f"model/model.{TOY}"
SIZE_METRIC = f"size/{TOY}_mb"
FORM = "toy runtime: the eager model, wrapped"


class Wrapped(BehindEager):
    """The eager model behind a runtime's own module, as a real runtime's session would be."""

    def forward(self, x: torch.Tensor):
        return object.__getattribute__(self, "_eager")(x)


@pytest.fixture
def toy_runtime():
    """The toy runtime, registered for the test and forgotten after it; yields the files its
    ``reopen`` was handed (a baseline's logged artifact, instead of deploying it again)."""
    reopened: list[Path] = []

    def reopen(path: Path, eager_model: nn.Module, context: DeployContext) -> Deployed:
        reopened.append(path)
        return Deployed(Wrapped(eager_model), path, form=FORM)

    @register_runtime(TOY, artifact=ARTIFACT, size_metric=SIZE_METRIC, reopen=reopen)
    def deploy(model: nn.Module, context: DeployContext) -> Deployed:
        path = Path(context.workdir) / Path(ARTIFACT).name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)  # the file it ships: its own format
        return Deployed(Wrapped(model), path, form=FORM)

    yield reopened
    RUNTIMES.remove(TOY)


def test_a_runtime_registered_outside_src_runs_through_train_jobs(toy_runtime, tiny_root, tmp_path):
    runtimes = f"benchmark.runtimes=[eager,{TOY}]"
    args = [
        "model=dyad_tiny",
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        "task.evaluation.n_boot=20",
        *[o for o in FAST if "runtimes" not in o],
        runtimes,
    ]
    done = train_runs(*args, methods=["baseline", "dynamic"], tmp=tmp_path)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for method, outcome in done.items():
        run = client.get_run(outcome.run_id)
        metrics, tags = run.data.metrics, run.data.tags
        assert metrics[schema.runtime_metric(TOY, schema.LATENCY_BS1)] > 0, method
        assert metrics[schema.runtime_speedup(TOY) + "_bs1"] > 0
        assert metrics[schema.runtime_check(TOY, "parity")] == 1.0
        assert metrics[schema.runtime_check(TOY, "max_abs_diff")] == 0.0  # the same model
        assert metrics[schema.runtime_check(TOY, "test/auroc")] == metrics["test/auroc"]
        assert tags[schema.runtime_tag(TOY, "form")] == FORM
        assert schema.runtime_tag(TOY, "skipped") not in tags
        shipped = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id, "model")}
        assert shipped[ARTIFACT] > 0  # under the name it declared
        assert metrics[SIZE_METRIC] == pytest.approx(shipped[ARTIFACT] / 1e6)
        assert metrics[schema.runtime_check(TOY, schema.RUNTIME_FILE_MB)] == metrics[SIZE_METRIC]
    method = client.get_run(done["dynamic"].run_id).data.metrics
    assert method[schema.runtime_vs_fp32(TOY) + "_bs1"] > 0  # beside the baseline in the runtime
    assert schema.runtime_check(TOY, "delta/auroc") in method
    # the method run reopened the baseline run's logged file instead of deploying it again
    assert [p.name for p in toy_runtime] == [Path(ARTIFACT).name]
    # and nothing outside this test names the runtime
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "conf").rglob("*.yaml")]:
        assert TOY not in path.read_text(), path
