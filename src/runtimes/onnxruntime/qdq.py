"""A static int8 variant's QDQ form written from its own scales, not recalibrated by ORT.

ONNX Runtime runs static int8 as QDQ: ``QuantizeLinear -> DequantizeLinear`` pairs around a float
op, which its graph optimizer fuses into int8 kernels (``MatMulIntegerToFloat``, ``QGemm``,
``QLinearConv``). :func:`write_qdq` writes those pairs for the int8 layers of an exported float
twin with the eager variant's parameters (:func:`src.quant.scales.static_layers`):

- the int8 weight with its per-channel scales, as an initializer behind a ``DequantizeLinear``;
- the input, quantized with the scale and zero point the eager layer quantizes it with;
- a bias as int32 at ``input x weight`` scale (as ORT's own quantizer writes it), which ORT needs
  to fuse a ``Conv`` or a ``MatMul`` + ``Add`` (its ``Gemm``) into one int8 kernel; a bias that
  several nodes share (an unrolled GRU's hidden bias, one per step) stays float, since ORT would
  dequantize it again at every step;
- a ``Conv``'s output (after a ``Relu`` that alone reads it), which ``QLinearConv`` needs, and a
  ``MatMul``'s where a ``Relu`` follows its bias, between the two (else ORT fuses all three into
  a float ``Gemm`` that dequantizes the weight at every call: 10 ms instead of 0.4 at batch 1
  for the default CNN). Other ``MatMul`` outputs stay float (one
  requantization fewer than eager, which measured faster: 145 against 176 ms at batch 128 for
  the default DyAD, equally close to the eager outputs).

This is linear in the graph's size: ORT's ``quantize_static`` calibrated and edited the unrolled
GRU's graph for 25-35 s, quadratically in its nodes, to arrive at ranges that lost 0.04 AUROC.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from itertools import count

import numpy as np
import onnx
from onnx import helper, numpy_helper

from src.quant.scales import StaticLayer


def write_qdq(model: onnx.ModelProto, nodes: Sequence[str], layers: Sequence[StaticLayer]) -> None:
    """Quantize, in place, the ``MatMul`` / ``Conv`` nodes named in ``nodes`` with the
    parameters of the eager layer whose (dequantized) weight each node multiplies by.

    Raises:
        ValueError: A node whose weight matches no layer (the message names it); ``model`` is
            then left as it was.
    """
    graph, selected = model.graph, set(nodes)
    by_weight = {_key(layer.weight): layer for layer in layers}
    initializers = {i.name: i for i in graph.initializer}
    matched = {}  # every node's layer first: nothing is written unless all of them match
    for node in graph.node:
        if node.name in selected:
            weight = _torch_layout(node, initializers[node.input[1]])
            matched[node.name] = by_weight.get(_key(weight))
            if matched[node.name] is None:
                raise ValueError(f"node {node.name}: its weight is no static int8 layer's")
    writer = _Writer(graph)
    for node in list(graph.node):
        if node.name in matched:
            writer.quantize(node, matched[node.name])
        writer.emit(node)
    del graph.node[:]
    graph.node.extend(writer.nodes)
    _drop_unread(graph)


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Remove the initializers no node reads any more (the float weights the int8 ones
    replaced): else the shipped file holds both, larger than the fp32 export."""
    read = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


class _Writer:
    """Builds the new node list in graph order, inserting the Q/DQ nodes where they belong."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph, self.nodes, self.ids = graph, [], count()
        self.initializers = {i.name: i for i in graph.initializer}
        self.readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.readers[name].append(node)
        self.int8_weights: dict[str, str] = {}  # float weight -> its dequantized int8 form
        self.after: dict[int, list[onnx.NodeProto]] = defaultdict(list)  # id(node) -> nodes
        self.graph_outputs = {o.name for o in graph.output}

    def emit(self, node: onnx.NodeProto) -> None:
        self.nodes.append(node)
        self.nodes.extend(self.after.pop(id(node), []))

    def quantize(self, node: onnx.NodeProto, layer: StaticLayer) -> None:
        """``node``'s QDQ inputs (emitted before it), its bias, a Conv's output."""
        conv = node.op_type == "Conv"
        node.input[0] = self._pair(node.input[0], layer.input_scale, layer.input_zero_point)
        node.input[1] = self._weight(node.input[1], layer, axis=0 if conv else 1)
        if conv:
            if len(node.input) > 2 and node.input[2]:
                node.input[2] = self._bias(node.input[2], layer)
            self._quantize_output(node, layer)
            return
        adds = self.readers[node.output[0]]
        if len(adds) != 1 or adds[0].op_type != "Add":
            return
        bias = adds[0].input[1]
        if bias in self.initializers and len(self.readers[bias]) == 1:
            adds[0].input[1] = self._bias(bias, layer)
        relu = self.readers[adds[0].output[0]]
        if len(relu) == 1 and relu[0].op_type == "Relu":  # ORT would fuse it into a float Gemm
            self._quantize_output(adds[0], layer, through_relu=False)

    def _quantize_output(
        self, node: onnx.NodeProto, layer: StaticLayer, through_relu: bool = True
    ) -> None:
        """A Q/DQ pair after ``node`` (``through_relu``: after the Relu that alone reads it),
        read by every reader of that tensor; a graph output stays float. Before a Relu, the
        eager layer's output parameters (those of its ReLU's output, zero point 0) clip at 0
        as the Relu does."""
        producer, tensor = node, node.output[0]
        readers = self.readers[tensor]
        if through_relu and len(readers) == 1 and readers[0].op_type == "Relu":
            producer, tensor = readers[0], readers[0].output[0]
            readers = self.readers[tensor]
        if tensor in self.graph_outputs:
            return
        emitted, self.nodes = self.nodes, []
        pair = self._pair(tensor, layer.output_scale, layer.output_zero_point)
        self.after[id(producer)].extend(self.nodes)
        self.nodes = emitted
        for reader in readers:
            reader.input[:] = [pair if i == tensor else i for i in reader.input]

    def _pair(self, tensor: str, scale: float, zero_point: int) -> str:
        s = self._initializer("scale", np.array(scale, np.float32))
        z = self._initializer("zero_point", np.array(zero_point, np.uint8))
        return self._node("DequantizeLinear", [self._node("QuantizeLinear", [tensor, s, z]), s, z])

    def _weight(self, name: str, layer: StaticLayer, axis: int) -> str:
        """The dequantized int8 weight (one per weight: an unrolled GRU's serves every step;
        ORT copies the DequantizeLinear per reader itself)."""
        if name not in self.int8_weights:
            values = layer.weight_int8 if axis == 0 else layer.weight_int8.T
            q = self._initializer(f"{name}.int8", values.copy())
            s = self._initializer(f"{name}.scale", layer.weight_scale)
            z = self._initializer(f"{name}.zero_point", layer.weight_zero_point)
            self.int8_weights[name] = self._node("DequantizeLinear", [q, s, z], axis=axis)
        return self.int8_weights[name]

    def _bias(self, name: str, layer: StaticLayer) -> str:
        bias = numpy_helper.to_array(self.initializers[name])
        scale = np.broadcast_to(layer.input_scale * layer.weight_scale, bias.shape)
        scale = scale.astype(np.float32)
        q = self._initializer(f"{name}.int32", np.round(bias / scale).astype(np.int32))
        s = self._initializer(f"{name}.scale", scale)
        z = self._initializer(f"{name}.zero_point", np.zeros(bias.shape, np.int32))
        return self._node("DequantizeLinear", [q, s, z], axis=0)

    def _initializer(self, name: str, value: np.ndarray) -> str:
        name = f"{name}/{next(self.ids)}"
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def _node(self, op: str, inputs: list[str], **attrs) -> str:
        out = f"qdq/{op}_{next(self.ids)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _torch_layout(node: onnx.NodeProto, weight: onnx.TensorProto) -> np.ndarray:
    """The node's weight in torch's ``(out, in, ...)`` layout (a MatMul holds ``W^T``)."""
    value = numpy_helper.to_array(weight)
    return value if node.op_type == "Conv" else value.T


def _key(weight: np.ndarray) -> str:
    """A layer's identity: its float weight, bit for bit (the twin holds the dequantized int8
    grid, so the exported initializer and the eager layer agree exactly)."""
    value = np.ascontiguousarray(weight, np.float32)
    return f"{value.shape}:{hashlib.sha1(value.tobytes()).hexdigest()}"
