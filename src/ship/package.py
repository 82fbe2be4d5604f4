"""The shipped variant as an MLflow pyfunc model: its files, its config, an input example from
the run's own test vehicles, the signature, pinned requirements, and a check that the model
answers as the run's evaluation did before anything is registered.

The model is logged from code (:mod:`src.serve.model`) with ``src/`` as its code path, so it
loads anywhere MLflow does, with no Hydra config, no ``src.train`` and no pickled object; its
artifacts are the run's ``model/model.pt`` (weights only) and, for ONNX Runtime, the run's
``model/model.onnx``.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelOutput
from mlflow.models import infer_signature
from mlflow.types.schema import ColSpec, Schema

from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.runtimes.base import RUNTIMES
from src.serve.variant import ONNX, WEIGHTS, ServedVariant
from src.tracking.store import RunStore

MODEL_CODE = ROOT / "src" / "serve" / "model.py"
# What the served code imports (src.serve.variant and the ONNX Runtime session), pinned to the
# versions it was checked with; tests/ship/test_package.py holds the list to the real imports.
SERVED_PACKAGES = (
    "mlflow",
    "torch",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "pytorch-lightning",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "matplotlib",
    "psutil",
    "rich",
)
CHECK_RTOL = 1e-5  # served score vs the run's evaluation, relative


def requirements() -> list[str]:
    """``name==version`` of every package the served model imports, as installed here."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in SERVED_PACKAGES]


@dataclass
class Example:
    """Real test units of the run and the run's own answer for them.

    Attributes:
        request: What the served model is sent: the vehicles' frame, or the images' array.
        expected: The run's answer, one row per unit, keyed like the served answer.
        key: The column both answers share (``car``; ``unit`` for images, their position).
        numeric: Columns compared to :data:`CHECK_RTOL` (``score``; ``p_<class>``).
        exact: Columns that must be equal (``flag``; ``label``).
        kept: The smaller request kept with the model as its input example.
        what: The numeric and the exact columns in words (``scores``, ``flags``).
    """

    request: pd.DataFrame | np.ndarray
    expected: pd.DataFrame
    key: str
    numeric: list[str]
    exact: list[str]
    kept: pd.DataFrame | np.ndarray
    what: tuple[str, str] = ("scores", "flags")


def files(store: RunStore, run_id: str, runtime: str, folder: Path) -> dict[str, str]:
    """The run's model file, and the file its runtime ships (ONNX Runtime's ``model.onnx``,
    where the runtime's registration says it logs it), downloaded into ``folder``."""
    out = {WEIGHTS: store.download(run_id, schema.MODEL_ARTIFACT, folder)}
    shipped = RUNTIMES.get(runtime).artifact
    if shipped:
        out[ONNX] = store.download(run_id, shipped, folder)
    return out


@dataclass(frozen=True)
class Check:
    """How the packaged model answered the example against the run's evaluation.

    Attributes:
        run_diff: Largest relative difference of a served score from the run's.
        batch_diff: Largest relative change of a served score when the example's vehicles are
            batched together (as an evaluation batches them) instead of one by one: above
            :data:`CHECK_RTOL`, the model's arithmetic depends on the batch (activations
            quantized per batch, a runtime's kernels), so the run's scores depended on which
            vehicles shared a batch and cannot be reproduced exactly.
    """

    run_diff: float
    batch_diff: float
    compared: str = "scores"
    equal: str = "flags"

    def tags(self) -> dict[str, str]:
        return {
            "check.run_diff": f"{self.run_diff:.3g}",
            "check.batch_diff": f"{self.batch_diff:.3g}",
            "check": self.words(),
        }

    def words(self) -> str:
        said = f"{self.compared} within {self.run_diff:.1e} (relative) of the run's"
        said += f", {self.equal} equal"
        if self.batch_diff > CHECK_RTOL:
            said += (
                f"; an answer moves by up to {self.batch_diff:.1e} when the units share a batch "
                "(activations quantized per batch, or the runtime's kernels), so the model "
                "answers each unit in batches of its own"
            )
        return said


def _relative(a: pd.Series, b: pd.Series) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def check_answers(variant: ServedVariant, example: Example) -> Check:
    """Answer the example as the served model will, and refuse to ship a model whose flags
    (labels) differ from the run's, or whose scores (probabilities) differ beyond
    :data:`CHECK_RTOL` when batching cannot explain it."""
    answer = _keyed(variant.answer(example.request), example.key)
    mixed = _keyed(variant.answer(example.request, mixed=True), example.key)
    merged = answer.merge(example.expected, on=example.key, suffixes=("", "_run"))
    if len(merged) != len(example.expected):
        raise UserError(f"the served model answered for {list(answer[example.key])}, not all")
    check = Check(
        max(_relative(merged[c], merged[f"{c}_run"]) for c in example.numeric),
        max(_relative(answer[c], mixed[c]) for c in example.numeric),
        example.what[0],
        example.what[1],
    )
    flips = sum(int((merged[c] != merged[f"{c}_run"]).sum()) for c in example.exact)
    if flips or (check.run_diff > CHECK_RTOL and check.batch_diff <= CHECK_RTOL):
        raise UserError(
            f"the packaged model does not answer as its run did: {', '.join(example.numeric)} "
            f"differ by up to {check.run_diff:.2e} (relative; {CHECK_RTOL:g} allowed), {flips} "
            f"{'/'.join(example.exact)} differ; not shipped"
        )
    return check


def _keyed(answer: pd.DataFrame, key: str) -> pd.DataFrame:
    """The answer with its key column (an image answer's rows are its units, in order)."""
    return answer if key in answer else answer.assign(**{key: np.arange(len(answer))})


def signature_of(example: Example, answer: pd.DataFrame):
    """Inputs: the kept example's columns and types (``car``, ``snippet``, the released
    columns), or its array's shape and type; outputs: the answer's columns. Every input column
    is declared optional: MLflow's own check answers a missing column with the whole request
    echoed back, while :mod:`src.serve.anomaly` names the missing columns in one line (a 400),
    and MLflow still converts and checks each type."""
    inferred = infer_signature(example.kept, answer)
    if isinstance(example.kept, pd.DataFrame):
        inferred.inputs = Schema(
            [ColSpec(c.type, c.name, required=False) for c in inferred.inputs.inputs]
        )
    return inferred


def log_pyfunc(
    store: RunStore,
    run_id: str,
    name: str,
    artifacts: dict[str, str],
    config: dict,
    example: Example,
    signature,
) -> str:
    """Log the pyfunc model as a LoggedModel of the source run (its run page lists it under
    "Logged models"), without reopening that finished run. Returns the model id."""
    mlflow.set_tracking_uri(store.uri)
    run = store.get(run_id)
    logged = mlflow.initialize_logged_model(
        name=name,
        source_run_id=run_id,
        experiment_id=run.info.experiment_id,
        tags={"variant": str(config["variant"]), "runtime": str(config["runtime"])},
    )
    mlflow.pyfunc.log_model(
        name=name,
        python_model=str(MODEL_CODE),
        artifacts=artifacts,
        model_config=config,
        code_paths=[str(ROOT / "src")],
        signature=signature,
        input_example=example.kept,
        pip_requirements=requirements(),
        model_id=logged.model_id,
    )
    store.client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return logged.model_id
