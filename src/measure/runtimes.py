"""Deployment runtimes: where a variant would ship, as something the latency harness can call.

``eager`` is the model itself (PyTorch, the reference every speedup divides). ``compile`` is
``torch.compile`` with inductor and freezing (weights folded as constants). ``cuda`` is the
variant on a GPU, where one is (fp32 and half precision; int8 stays on the CPU). ``onnxruntime``
exports the variant with torch's dynamo exporter and runs the file in ONNX Runtime on the CPU
provider with fixed threads; an eager int8 variant runs as ORT's own int8 form of the same method
(:mod:`src.measure.onnx_quant`), never silently as fp32. A runtime that cannot take a variant
raises :class:`RuntimeUnavailable` with a one-line reason; the caller logs it and goes on.

Example:
    >>> spec = RuntimeSpec(("eager", "onnxruntime"))
    >>> deployed = deploy("onnxruntime", model, DeployContext(example, calib, workdir, 2))
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from src.core.errors import ConfigError
from src.core.registry import Registry
from src.measure.compiled import compile_variant
from src.measure.cuda import on_cuda
from src.measure.onnx import OrtModel, OrtModule, RuntimeUnavailable, export_onnx
from src.measure.onnx_quant import op_counts, quantize_twin, recompose_grus
from src.quant.deploy import float_twin

EAGER, ONNXRUNTIME, COMPILE, CUDA = "eager", "onnxruntime", "compile", "cuda"


@dataclass(frozen=True)
class RuntimeSpec:
    """Which runtimes measure every variant, and how close a runtime's answer must stay.

    Attributes:
        names: Runtimes besides ``eager`` (always measured: the reference) to deploy to.
        parity_tolerance: Largest change of the task's primary metric, recomputed from the
            runtime's own outputs on the test set, that still counts as the same model; beyond
            it the runtime's row is failed parity and takes no part in verdicts. None: the
            metric's non-inferiority margin (a change the verdicts would call a difference).
    """

    names: tuple[str, ...] = (EAGER,)
    parity_tolerance: float | None = None

    def __post_init__(self) -> None:
        names = (self.names,) if isinstance(self.names, str) else tuple(self.names or ())
        unknown = [n for n in names if n not in RUNTIMES.names()]
        if unknown:
            raise ConfigError(
                f"benchmark.runtimes has unknown {unknown}; choose from {RUNTIMES.names()}"
            )
        object.__setattr__(self, "names", tuple(dict.fromkeys((EAGER, *names))))
        if self.parity_tolerance is not None and not float(self.parity_tolerance) >= 0:
            raise ConfigError(
                f"benchmark.parity_tolerance={self.parity_tolerance} must be >= 0, or null for "
                "the metric's non-inferiority margin"
            )

    def tolerance(self, metric) -> float:
        """The parity tolerance for ``metric`` (a MetricSpec, or None): the set one, else its
        margin, else 0.01."""
        if self.parity_tolerance is not None:
            return float(self.parity_tolerance)
        margin = getattr(metric, "margin", None)
        return float(margin) if margin is not None else 0.01

    @property
    def deployed(self) -> tuple[str, ...]:
        """The runtimes other than eager."""
        return tuple(n for n in self.names if n != EAGER)


@dataclass(frozen=True)
class DeployContext:
    """What deploying needs besides the model.

    Attributes:
        example: One input batch (its shape fixes every dimension but the batch).
        calibration: Batches that calibrate a static int8 runtime form.
        workdir: Where the runtime's files go.
        threads: Intra-op threads of the runtime (the latency spec's).
    """

    example: torch.Tensor
    calibration: Sequence[torch.Tensor]
    workdir: Path
    threads: int | None = None


@dataclass
class Deployed:
    """A variant in a runtime.

    Attributes:
        module: Called like the eager model, returns the same output structure.
        artifact: The file a deployment would ship (None for eager).
        int8_ops: Int8 compute kernels in what the runtime runs (None where not counted).
        float_ops: Float compute kernels (MatMul/Gemm/Conv/GRU) in it.
        form: How the variant runs there, in words (``ORT dynamic int8 (2 GRUs unrolled)``).
    """

    module: nn.Module
    artifact: Path | None = None
    int8_ops: int | None = None
    float_ops: int | None = None
    form: str = ""

    @property
    def size_mb(self) -> float | None:
        return None if self.artifact is None else self.artifact.stat().st_size / 1e6


RUNTIMES: Registry[Callable[[nn.Module, DeployContext], Deployed]] = Registry(
    "runtime", hint="benchmark.runtimes=[eager,onnxruntime]"
)


def deploy(name: str, model: nn.Module, context: DeployContext) -> Deployed:
    """``model`` in runtime ``name``.

    Raises:
        RuntimeUnavailable: The runtime cannot take this model (one-line reason).
    """
    return RUNTIMES.get(name)(model, context)


@RUNTIMES.register(EAGER)
def eager(model: nn.Module, context: DeployContext) -> Deployed:
    return Deployed(model, form="PyTorch eager")


@RUNTIMES.register(ONNXRUNTIME)
def onnxruntime(model: nn.Module, context: DeployContext) -> Deployed:
    """Export (the float twin of an int8 variant, then ORT-quantized), open a session, count
    the int8 kernels in the graph ORT optimized."""
    _check_float_inputs(model)
    twin = recompose_grus(float_twin(model))
    workdir = Path(context.workdir)
    exported = export_onnx(twin.model, context.example, workdir / "model.float.onnx").path
    path, form = workdir / "model.onnx", "ORT fp32"
    if twin.mode is None:
        exported.replace(path)
    else:
        try:
            quantize_twin(twin, exported, path, context.calibration)
        except Exception as err:  # ORT's quantizer raises many types; keep the run going
            raise RuntimeUnavailable(f"ORT {twin.mode} quantization failed: {err}") from err
        finally:
            exported.unlink(missing_ok=True)
        grus = f", {len(twin.int8_grus)} GRU(s) unrolled" if twin.int8_grus else ""
        form = f"ORT {twin.mode} int8{grus}"
    return open_session(path, model, context, form)


@RUNTIMES.register(COMPILE)
def compiled(model: nn.Module, context: DeployContext) -> Deployed:
    """``torch.compile`` (inductor, freezing); an int8 variant as PT2E int8 of its float twin
    (:mod:`src.measure.compiled`), compiled here on the example batch."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise RuntimeUnavailable("torch.compile's inductor needs a C++ compiler (g++) on PATH")
    _check_float_inputs(model, "torch.compile's CPU inductor")
    module, int8, floats, form = compile_variant(model, context.example, context.calibration)
    return Deployed(module, None, int8, floats, form)


@RUNTIMES.register(CUDA)
def cuda(model: nn.Module, context: DeployContext) -> Deployed:
    """The variant on the first GPU (:mod:`src.measure.cuda`); CPU-only int8 is a skip."""
    module, form = on_cuda(model)
    return Deployed(module, None, None, None, form)


def open_session(path: Path, eager_model: nn.Module, context: DeployContext, form: str):
    """A finished ONNX file as a :class:`Deployed` (int8 kernels counted on ORT's own graph)."""
    optimized = path.with_name(path.stem + ".optimized.onnx")
    try:
        runtime = OrtModel(path, context.threads, optimized_path=optimized)
    except Exception as err:  # an op without a CPU kernel (fp16 GRU, bf16 anything)
        raise RuntimeUnavailable(f"ONNX Runtime cannot run the export: {err}") from err
    int8, floats = op_counts(optimized)
    optimized.unlink(missing_ok=True)
    module = OrtModule(runtime, eager_model, context.example)
    return Deployed(module, path, int8, floats, form)


def _check_float_inputs(model: nn.Module, runtime: str = "ONNX Runtime's CPU provider") -> None:
    """Half-precision models stay in eager: exporting or compiling them is not built yet."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes & {torch.float16, torch.bfloat16}:
        names = sorted(str(d).removeprefix("torch.") for d in dtypes)
        raise RuntimeUnavailable(
            f"half-precision weights ({', '.join(names)}): deploying them to {runtime} is not "
            "built yet; they are measured in eager"
        )
