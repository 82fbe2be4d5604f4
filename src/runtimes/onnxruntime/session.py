"""The ``onnxruntime`` runtime: the variant exported with torch's dynamo exporter and run in ONNX
Runtime on the CPU provider with fixed threads.

An eager int8 variant runs as ORT's own int8 form of the same method (its float twin exported,
then quantized by ORT: :mod:`src.runtimes.onnxruntime.quantize`), never silently as fp32; the
int8 kernels are counted on the graph ORT optimized. The file ships as ``model/model.onnx``, its
size is ``size/onnx_mb``, and a baseline run's logged file is opened again rather than exported
anew (exporting costs tens of seconds).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from src.core import schema
from src.quant.deploy import STATIC, float_twin
from src.quant.scales import static_layers
from src.runtimes.base import (
    BehindEager,
    DeployContext,
    Deployed,
    RuntimeUnavailable,
    check_float_weights,
    register_runtime,
)
from src.runtimes.onnxruntime.export import export_onnx, exportable_twin
from src.runtimes.onnxruntime.quantize import quantize_twin

ARTIFACT = "model/model.onnx"  # where a run keeps the file (the baseline's is reused from there)
QUANTIZED_OPS = (  # int8 compute kernels as ORT runs them (after its fusions)
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QLinearMatMul",
    "QLinearConv",
    "ConvInteger",
    "QGemm",
    "QAttention",
)
FLOAT_OPS = ("MatMul", "Gemm", "Conv", "FusedConv", "FusedMatMul", "FusedGemm", "GRU", "LSTM")


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


def op_counts(path: Path) -> tuple[int, int]:
    """(int8, float) compute nodes in the graph ORT actually runs (its optimized model)."""
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    return sum(op in QUANTIZED_OPS for op in ops), sum(op in FLOAT_OPS for op in ops)


def reopen(path: Path, eager_model: nn.Module, context: DeployContext) -> Deployed:
    """A baseline run's logged file (the fp32 export), in a session again."""
    return open_session(path, eager_model, context, "ORT fp32")


@register_runtime("onnxruntime", artifact=ARTIFACT, size_metric=schema.SIZE_ONNX_MB, reopen=reopen)
def deploy(model: nn.Module, context: DeployContext) -> Deployed:
    """Export (the float twin of an int8 variant, then ORT-quantized), open a session, count
    the int8 kernels in the graph ORT optimized."""
    check_float_weights(model, "ONNX Runtime's CPU provider")
    twin = exportable_twin(float_twin(model))
    workdir = Path(context.workdir)
    exported = export_onnx(twin.model, context.example, workdir / "model.float.onnx").path
    path, form = workdir / PurePosixPath(ARTIFACT).name, "ORT fp32"
    if twin.mode is None:
        exported.replace(path)
    else:
        try:
            static = static_layers(model, context.example) if twin.mode == STATIC else ()
            source = quantize_twin(twin, exported, path, context.calibration, static)
        except Exception as err:  # ORT's quantizer raises many types; keep the run going
            raise RuntimeUnavailable(f"ORT {twin.mode} quantization failed: {err}") from err
        finally:
            exported.unlink(missing_ok=True)
        grus = f", {len(twin.int8_grus)} GRU(s) unrolled" if twin.int8_grus else ""
        form = f"ORT {twin.mode} int8{f' ({source})' if source else ''}{grus}"
    return open_session(path, model, context, form)
