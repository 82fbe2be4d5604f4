"""A GRU that ONNX Runtime can run in int8: each exported ``GRU`` node unrolled into MatMuls.

ONNX Runtime has no int8 GRU (its quantizers leave the ``GRU`` op in fp32; only LSTM has a
dynamic-int8 kernel). :func:`expand_grus` replaces every ``GRU`` node of an exported model by the
same recurrence written out over the (fixed) sequence length: one input projection ``MatMul``
over the whole sequence, then per step the hidden projection ``MatMul`` and the gate arithmetic
(PyTorch's order and equations, as :class:`src.models.gru.DecomposedGRU`). The projections are
then plain ``MatMul`` nodes in the main graph, which ONNX Runtime's dynamic and static (QDQ)
quantizers both reach. The weights come from the torch module the node was exported from (found
through the exporter's ``name_scopes`` metadata), not from the node's inputs, which the exporter
computes with slices.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import count

import numpy as np
import onnx
from onnx import helper, numpy_helper
from torch import nn

GRU_OP = "GRU"


def expand_grus(model: onnx.ModelProto, module: nn.Module, paths: set[str] | None = None) -> int:
    """Unroll, in place, the ``GRU`` nodes of ``model`` exported from ``module``: those of the
    modules named in ``paths`` (None: every one).

    Returns:
        How many GRU nodes were expanded.

    Raises:
        ValueError: A node whose layout, direction, sequence length or module is not the
            exported PyTorch ``nn.GRU`` this function expects (the message says which).
    """
    graph, ids = model.graph, count()
    layers: dict[str, int] = defaultdict(int)
    nodes, expanded = [], 0
    for node in graph.node:
        path = _module_path(node) if node.op_type == GRU_OP else None
        if path is None or paths is not None and path not in paths:
            nodes.append(node)
            continue
        gru = module.get_submodule(path)
        if not isinstance(gru, nn.GRU) or _attr(node, "layout", 0) != 0:
            raise ValueError(f"GRU node {node.name} is not an exported nn.GRU ({path})")
        builder = _Unroll(graph, gru, layers[path], f"{path or 'gru'}.l{layers[path]}", ids)
        layers[path] += 1
        nodes.extend(builder.build(node, _sequence_length(model)))
        expanded += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead_nodes(graph)
    return expanded


class _Unroll:
    """Builds the nodes of one GRU layer (all its directions)."""

    def __init__(self, graph, gru: nn.GRU, layer: int, prefix: str, ids) -> None:
        self.graph, self.gru, self.layer, self.prefix, self.ids = graph, gru, layer, prefix, ids
        self.hidden = gru.hidden_size
        self.nodes: list[onnx.NodeProto] = []

    def build(self, node: onnx.NodeProto, seq_len: int) -> list[onnx.NodeProto]:
        x, h0 = node.input[0], node.input[5] if len(node.input) > 5 else ""
        directions = 2 if self.gru.bidirectional else 1
        if len(node.input) > 4 and node.input[4]:
            raise ValueError(f"GRU node {node.name} has sequence_lens: only fixed lengths unroll")
        outs, finals = [], []
        for d in range(directions):
            states = self._direction(x, h0, d, seq_len)
            outs.append(self._op("Concat", [self._unsqueeze(s, 0) for s in states], axis=0))
            finals.append(states[0] if d == 1 else states[-1])  # backward ends at t = 0
        y, y_h = (node.output[i] if len(node.output) > i else "" for i in (0, 1))
        if y:
            self._op("Concat", [self._unsqueeze(o, 1) for o in outs], axis=1, out=y)
        if y_h:
            self._op("Concat", [self._unsqueeze(f, 0) for f in finals], axis=0, out=y_h)
        return self.nodes

    def _direction(self, x: str, h0: str, d: int, seq_len: int) -> list[str]:
        """States (B, H) per time step in input order for direction ``d``."""
        w_ih, w_hh, b_ih, b_hh = self._weights(d)
        hs = self.hidden
        gi = self._op("Add", [self._op("MatMul", [x, w_ih]), b_ih])  # (T, B, 3H): one GEMM
        steps = [gi]  # one step: nothing to split
        if seq_len > 1:
            steps = self._op("Split", [gi, self._const([1] * seq_len)], axis=0, n=seq_len)
        h = self._initial(h0, d, gi)
        states: list[str] = [""] * seq_len
        for t in range(seq_len - 1, -1, -1) if d == 1 else range(seq_len):
            gi_t = self._op("Squeeze", [steps[t], self._const([0])])
            gi_rz, gi_n = self._op("Split", [gi_t, self._const([2 * hs, hs])], axis=-1, n=2)
            gh = self._op("Add", [self._op("MatMul", [h, w_hh]), b_hh])
            gh_rz, gh_n = self._op("Split", [gh, self._const([2 * hs, hs])], axis=-1, n=2)
            rz = self._op("Sigmoid", [self._op("Add", [gi_rz, gh_rz])])
            r, z = self._op("Split", [rz, self._const([hs, hs])], axis=-1, n=2)
            n = self._op("Tanh", [self._op("Add", [gi_n, self._op("Mul", [r, gh_n])])])
            # h' = (1 - z) * n + z * h, as n + z * (h - n)
            h = self._op("Add", [n, self._op("Mul", [z, self._op("Sub", [h, n])])])
            states[t] = h
        return states

    def _initial(self, h0: str, d: int, gi: str) -> str:
        """h0[layer-direction] (B, H); zeros shaped like the batch when the node has none."""
        if h0:
            return self._op("Squeeze", [self._op("Slice", [h0, *self._consts([d], [d + 1], [0])])])
        batch = self._op("Slice", [self._op("Shape", [gi]), *self._consts([1], [2], [0])])
        shape = self._op("Concat", [batch, self._const([self.hidden])], axis=0)
        zero = helper.make_tensor("value", onnx.TensorProto.FLOAT, [1], [0.0])
        return self._op("ConstantOfShape", [shape], value=zero)

    def _weights(self, d: int) -> list[str]:
        """Initializers W_ih^T (in, 3H), W_hh^T (H, 3H), b_ih, b_hh of (layer, direction d)."""
        sfx = f"l{self.layer}{'_reverse' if d else ''}"
        names = []
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            tensor = getattr(self.gru, f"{kind}_{sfx}", None)
            if tensor is None:
                value = np.zeros(3 * self.hidden, np.float32)  # bias=False
            else:
                value = tensor.detach().float().numpy()
            value = value.T.copy() if value.ndim == 2 else value
            name = f"{self.prefix}.{kind}{'_reverse' if d else ''}"
            self.graph.initializer.append(numpy_helper.from_array(value, name))
            names.append(name)
        return names

    def _op(self, op: str, inputs: list[str], n: int = 1, out: str | None = None, **attrs):
        outputs = [out] if out else [f"{self.prefix}/{op}_{next(self.ids)}" for _ in range(n)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0] + "_n", **attrs))
        return outputs[0] if n == 1 else outputs

    def _unsqueeze(self, name: str, axis: int) -> str:
        return self._op("Unsqueeze", [name, self._const([axis])])

    def _const(self, values: list[int]) -> str:
        name = f"{self.prefix}/const_{next(self.ids)}"
        self.graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def _consts(self, *values: list[int]) -> list[str]:
        return [self._const(v) for v in values]


def _module_path(node: onnx.NodeProto) -> str:
    """``encoder_rnn`` from the exporter's ``pkg.torch.onnx.name_scopes`` metadata."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes is None:
        raise ValueError(f"GRU node {node.name} carries no module path; export with dynamo=True")
    return ".".join(s for s in ast.literal_eval(scopes)[:-1] if s)


def _sequence_length(model: onnx.ModelProto) -> int:
    """The input's fixed time dimension (axis 1 of a (batch, T, features) input)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 3 or not dims[1].dim_value:
        raise ValueError("unrolling a GRU needs a (batch, T, features) input with a fixed T")
    return int(dims[1].dim_value)


def _attr(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _drop_dead_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes (and initializers) nothing reaches the graph outputs through."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
