"""The ONNX runtime leg: export a model with torch's maintained (dynamo) exporter, run the file in
ONNX Runtime on the CPU provider with fixed threads, and check it gives the eager model's answer.

:mod:`src.measure.runtimes` deploys every variant through these (quantized variants via
:mod:`src.measure.onnx_quant`), and the pipeline times, checks and logs them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from src.core.errors import UserError, first_line

# The exporter's IR passes log every pass at INFO; a run's log keeps its own phases readable.
for _name in ("onnx_ir", "onnxscript"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RuntimeUnavailable(UserError):
    """A model cannot be exported or run in a runtime; the message is the one-line reason."""


@dataclass(frozen=True)
class OnnxExport:
    """A finished export: the file, its size and how long exporting took."""

    path: Path
    size_mb: float
    seconds: float


def export_onnx(
    model: nn.Module, example: torch.Tensor, path: str | Path, optimize: bool = False
) -> OnnxExport:
    """Export ``model`` (eval mode) with a dynamic batch dimension to ``path``.

    ``optimize`` runs onnxscript's optimizer (constant folding: weights computed by nodes become
    initializers, as ORT's own quantizers expect); ONNX Runtime does the same at session start,
    so a file only run, or quantized here by name, does not need it.

    The file is written beside ``path`` under a temporary name and renamed when complete, so a
    failed or interrupted export never leaves a file that passes for a finished one.

    Raises:
        RuntimeUnavailable: The exporter cannot express the model (the reason in one line).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    started = time.perf_counter()
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            optimize=optimize,
            verbose=False,
        )
        program.save(partial)
        os.replace(partial, path)
    except Exception as err:  # the exporter raises many types; one line says which op failed
        raise RuntimeUnavailable(
            f"onnx export of {type(model).__name__} failed: {first_line(err)}"
        ) from err
    finally:
        model.train(was_training)
        Path(partial).unlink(missing_ok=True)
    return OnnxExport(path, path.stat().st_size / 1e6, time.perf_counter() - started)


class OrtModel:
    """An ONNX file in an ONNX Runtime session (CPU provider, ``threads`` intra-op threads).

    Calling it with a tensor returns the outputs as a list of tensors, in the order the eager
    model's (flattened) outputs come.
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, optimized_path: Path | None = None
    ) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the "hardware specific" note is expected
        if optimized_path is not None:  # the graph as ORT runs it (after its fusions)
            options.optimized_model_filepath = str(optimized_path)
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})
        return [torch.from_numpy(np.asarray(o)) for o in outputs]


class BehindEager(nn.Module):
    """A runtime's callable behind the eager model's interface: attributes it does not have
    (DyAD's ``split_target``, for the task's evaluation) come from the eager model, which is
    held, not registered as a submodule (never traced, moved or counted)."""

    def __init__(self, eager: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_eager", eager)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_eager"), name)


class OrtModule(BehindEager):
    """An :class:`OrtModel` behind the eager model's interface: same input, and outputs in the
    eager model's structure (a DyAD output tuple, a logits tensor), so the task's own evaluation
    and the latency harness call it like the eager model."""

    def __init__(self, runtime: OrtModel, eager: nn.Module, example: torch.Tensor) -> None:
        super().__init__(eager)
        self.runtime = runtime
        with torch.inference_mode():
            was_training = eager.training
            _, self.spec = tree_flatten(eager.eval()(example[:1]))
            eager.train(was_training)

    def forward(self, x: torch.Tensor):
        return tree_unflatten(self.runtime(x.float()), self.spec)


@torch.inference_mode()
def max_abs_diff(model: nn.Module, runtime, inputs: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between the eager model's outputs and the runtime's over
    ``inputs`` (every output leaf, e.g. DyAD's prediction and latent statistics)."""
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        for x in inputs:
            expected, _ = tree_flatten(model(x))
            got, _ = tree_flatten(runtime(x))
            if len(got) != len(expected):
                raise RuntimeUnavailable(
                    f"the runtime returned {len(got)} outputs, the eager model {len(expected)}"
                )
            for e, g in zip(expected, got, strict=True):
                worst = max(worst, float((e.float() - g.float()).abs().max()))
    finally:
        model.train(was_training)
    return worst
