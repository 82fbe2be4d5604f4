"""An int8 variant in ONNX Runtime: its float twin exported, then quantized by ORT in the same mode.

The eager variant's int8 modules do not export. Its float twin (:func:`src.quant.deploy.float_twin`:
the same weights, dequantized) does; ONNX Runtime's own quantizer then makes it int8 the way the
method did: ``dynamic`` weights int8 with activations quantized per call (``MatMulInteger``),
``static`` weights and activations int8 with ranges calibrated on the same calibration batches
(QDQ, fused by ORT into ``QLinear*`` kernels). Only the nodes of modules that were int8 are
quantized, and the GRUs that were int8 are first unrolled (:func:`expand_grus`) so their
projections are reachable: ORT has no int8 GRU of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from src.measure.onnx import RuntimeUnavailable
from src.measure.onnx_gru import expand_grus
from src.models.gru import DecomposedGRU, to_gru
from src.quant.deploy import DYNAMIC, MatMulLinear, Twin

OPS = ("MatMul", "Conv")  # what the int8 modules export as (MatMulLinear, Conv1d/2d)
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


def recompose_grus(twin: Twin) -> Twin:
    """The twin with every DecomposedGRU (a static variant's GRU, its projections twinned) as
    the float ``nn.GRU`` of the same weights, named in ``int8_grus`` when its projections were
    int8: exported, it is one ``GRU`` node that :func:`expand_grus` unrolls."""
    modules, grus = list(twin.int8_modules), list(twin.int8_grus)
    for name, module in list(twin.model.named_modules()):
        if not isinstance(module, DecomposedGRU):
            continue
        for cell in module.cells:
            for key in ("ih", "hh"):
                cell._modules[key] = _as_linear(cell._modules[key])
        parent, _, child = name.rpartition(".")
        setattr(twin.model.get_submodule(parent) if parent else twin.model, child, to_gru(module))
        inside = [m for m in modules if m.startswith(f"{name}.")]
        if inside:
            modules = [m for m in modules if m not in inside] + [name]
            grus.append(name)
    return Twin(twin.model, twin.mode, modules, grus)


def _as_linear(module: nn.Module) -> nn.Linear:
    """The plain nn.Linear of a twinned projection: MatMulLinear or nn.Linear, maybe between
    (identity) stubs."""
    if isinstance(module, nn.Sequential):
        inner = [m for m in module if not isinstance(m, nn.Identity)]
        if len(inner) != 1:
            raise RuntimeUnavailable(f"cannot read one GRU projection from {module}")
        module = inner[0]
    if isinstance(module, nn.Linear):
        return module
    if not isinstance(module, MatMulLinear):
        raise RuntimeUnavailable(f"no float form of a GRU projection {type(module).__name__}")
    weight = module.weight_t.detach().t()
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=module.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if module.bias is not None:
            linear.bias.copy_(module.bias)
    return linear


def quantize_twin(
    twin: Twin, float_path: Path, out_path: Path, calibration: Sequence[torch.Tensor]
) -> None:
    """Write ``out_path``: the exported twin (``float_path``) with its int8 modules quantized by
    ONNX Runtime in ``twin.mode``; ``calibration`` batches set static activation ranges."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    model = onnx.load(str(float_path))
    expand_grus(model, twin.model, set(twin.int8_grus))
    nodes = int8_nodes(model, twin.int8_modules)
    unrolled = out_path.with_name(out_path.stem + ".float.onnx")
    onnx.save(model, str(unrolled))
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # ORT's "consider pre-processing" hint
    try:
        if twin.mode == DYNAMIC:
            quantize_dynamic(
                unrolled,
                out_path,
                op_types_to_quantize=list(OPS),
                nodes_to_quantize=nodes,
                weight_type=QuantType.QInt8,
            )
        else:
            quantize_static(
                unrolled,
                out_path,
                CalibrationReader(model.graph.input[0].name, calibration),
                quant_format=QuantFormat.QDQ,
                # Also the op types: ORT calibrates every tensor of these types, and its
                # augmentation is quadratic in their number (all Split/Slice of an unrolled GRU).
                op_types_to_quantize=list(OPS),
                nodes_to_quantize=nodes,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
    finally:
        logging.getLogger().setLevel(quiet)
        unrolled.unlink(missing_ok=True)


def int8_nodes(model: onnx.ModelProto, modules: Sequence[str]) -> list[str]:
    """MatMul / Conv nodes whose weight is an initializer of one of ``modules`` (named by the
    exporter after the parameter's path, ``hidden2mean.weight_t``; unrolled GRUs after theirs)."""
    initializers = {i.name for i in model.graph.initializer}
    prefixes = tuple(f"{m}." for m in modules)
    return [
        node.name
        for node in model.graph.node
        if node.op_type in OPS
        and any(i in initializers and i.startswith(prefixes) for i in node.input[1:2])
    ]


def op_counts(path: Path) -> tuple[int, int]:
    """(int8, float) compute nodes in the graph ORT actually runs (its optimized model)."""
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    return sum(op in QUANTIZED_OPS for op in ops), sum(op in FLOAT_OPS for op in ops)


class CalibrationReader:
    """ORT's CalibrationDataReader protocol over our calibration batches."""

    def __init__(self, name: str, batches: Sequence[torch.Tensor]) -> None:
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch.float().numpy()}

    def rewind(self) -> None:  # ORT calls it between calibration passes in some modes
        raise RuntimeError("calibration batches are read once")
