"""An int8 variant in ONNX Runtime: its float twin exported, then quantized by ORT in the same mode.

The eager variant's int8 modules do not export. Its float twin (:func:`src.quant.deploy.float_twin`:
the same weights, dequantized) does; ONNX Runtime's own quantizer then makes it int8 the way the
method did: ``dynamic`` weights int8 with activations quantized per call (``MatMulInteger``),
``static`` weights and activations int8 as QDQ (fused by ORT into int8 kernels), written from the
eager variant's own scales (:mod:`src.runtimes.onnxruntime.qdq`), or, where those do not cover
every layer, with ranges ORT calibrates on the same calibration batches. Only the nodes of
modules that were int8 are quantized, and the GRUs that were int8 are first unrolled
(:func:`src.runtimes.onnxruntime.gru.expand_grus`) so their projections are reachable: ORT has
no int8 GRU of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch

from src.quant.deploy import DYNAMIC, Twin
from src.quant.scales import StaticLayer
from src.runtimes.onnxruntime.gru import expand_grus
from src.runtimes.onnxruntime.qdq import write_qdq

log = logging.getLogger(__name__)
OPS = ("MatMul", "Conv")  # what the int8 modules export as (MatMulLinear, Conv1d/2d)
OWN_SCALES, ORT_CALIBRATED = "own scales", "ORT-calibrated"


def quantize_twin(
    twin: Twin,
    float_path: Path,
    out_path: Path,
    calibration: Sequence[torch.Tensor],
    static: Sequence[StaticLayer] = (),
) -> str:
    """Write ``out_path``: the exported twin (``float_path``) with its int8 modules quantized in
    ``twin.mode``. A static twin takes the eager variant's own parameters (``static``, from
    :func:`src.quant.scales.static_layers`) where they cover every int8 node; else ORT
    calibrates it on the ``calibration`` batches.

    Returns:
        Where a static form's ranges came from (``own scales``, ``ORT-calibrated``); "" for
        dynamic.
    """
    model = onnx.load(str(float_path))
    expand_grus(model, twin.model, set(twin.int8_grus))
    nodes = int8_nodes(model, twin.int8_modules)
    if twin.mode != DYNAMIC and static:
        try:
            write_qdq(model, nodes, static)
        except ValueError as err:  # a layer the eager hooks did not see: ORT calibrates it
            log.warning("ORT static int8 recalibrated, the variant's scales do not fit: %s", err)
        else:
            onnx.save(model, str(out_path))
            return OWN_SCALES
    _ort_quantize(twin.mode, model, nodes, out_path, calibration)
    return "" if twin.mode == DYNAMIC else ORT_CALIBRATED


def _ort_quantize(mode, model: onnx.ModelProto, nodes, out_path: Path, calibration) -> None:
    """ORT's own quantizer on ``model``'s ``nodes`` (static: calibrated on ``calibration``)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    unrolled = out_path.with_name(out_path.stem + ".float.onnx")
    onnx.save(model, str(unrolled))
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # ORT's "consider pre-processing" hint
    try:
        if mode == DYNAMIC:
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


class CalibrationReader:
    """ORT's CalibrationDataReader protocol over our calibration batches."""

    def __init__(self, name: str, batches: Sequence[torch.Tensor]) -> None:
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch.float().numpy()}

    def rewind(self) -> None:  # ORT calls it between calibration passes in some modes
        raise RuntimeError("calibration batches are read once")
