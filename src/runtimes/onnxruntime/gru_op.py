"""``nn.GRU`` exported as ONNX's own ``GRU`` op, without tracing the recurrence.

Exported as it is, an ``nn.GRU`` reaches the ONNX ``GRU`` op only after ``torch.export`` has
run aten's GRU decomposition (a cell per time step, under fake tensors with a symbolic batch)
to learn its output shapes: for DyAD at T = 128 that is 1,536 traced cells and 20-75 s per
export, and a batch-of-one example fails there. :func:`with_onnx_grus` swaps each ``nn.GRU``
for :class:`OnnxGRU`, which holds the weights in ONNX's layout (gates z, r, h; both biases in
one ``B``) and calls one custom op per layer: in eager it runs ``torch.gru`` on the same
weights, its fake kernel gives the shapes at once, and :data:`TRANSLATIONS` writes it as one
``GRU`` node (``linear_before_reset=1``: PyTorch's gate equation). The nodes keep the module's
name (``encoder_rnn``) in the exporter's scope metadata, which :mod:`.gru` reads to unroll them.
"""

from __future__ import annotations

import copy

import torch
from onnxscript import opset18 as op
from torch import nn


def _swap_gates(t: torch.Tensor, hidden: int) -> torch.Tensor:
    """PyTorch's gate chunks (r, z, n) as ONNX's (z, r, h), or back (the swap is its own
    inverse); along dim 0 of a (3H, .) weight or (3H,) bias, dim 1 of a stacked (D, 3H, .)."""
    dim = 1 if t.dim() == 3 else 0
    first, second, third = t.split(hidden, dim=dim)
    return torch.cat([second, first, third], dim=dim)


@torch.library.custom_op("compresslab::onnx_gru", mutates_args=())
def onnx_gru(
    x: torch.Tensor,
    h0: torch.Tensor,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    hidden_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One GRU layer in ONNX's contract: x (T, B, I), h0 (D, B, H), w (D, 3H, I), r (D, 3H, H),
    b (D, 6H) -> Y (T, D, B, H), Y_h (D, B, H)."""
    directions, hs = w.shape[0], hidden_size
    params: list[torch.Tensor] = []
    for d in range(directions):
        bias = b[d]
        params += [_swap_gates(w[d], hs), _swap_gates(r[d], hs)]
        params += [_swap_gates(bias[: 3 * hs], hs), _swap_gates(bias[3 * hs :], hs)]
    y, h_n = torch.gru(x, h0, params, True, 1, 0.0, False, directions == 2, False)
    steps, batch = x.shape[:2]
    return y.view(steps, batch, directions, hs).permute(0, 2, 1, 3).contiguous(), h_n


@onnx_gru.register_fake
def _onnx_gru_shapes(x, h0, w, r, b, hidden_size):
    steps, batch, directions = x.shape[0], x.shape[1], w.shape[0]
    return x.new_empty(steps, directions, batch, hidden_size), x.new_empty(
        directions, batch, hidden_size
    )


def _onnx_gru_node(x, h0, w, r, b, hidden_size: int):
    direction = "bidirectional" if w.shape[0] == 2 else "forward"
    return op.GRU(
        x, w, r, b, None, h0, hidden_size=hidden_size, linear_before_reset=1, direction=direction
    )


# What torch.onnx.export(custom_translation_table=...) needs to write the op as a GRU node.
TRANSLATIONS = {torch.ops.compresslab.onnx_gru.default: _onnx_gru_node}


class OnnxGRU(nn.Module):
    """An ``nn.GRU`` (eval mode, any layers and directions) as one ONNX ``GRU`` node per layer.

    Args:
        gru: The module whose weights (copied, in ONNX's layout, as buffers) it runs.
    """

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        self.batch_first, self.hidden_size = gru.batch_first, gru.hidden_size
        self.num_layers, self.directions = gru.num_layers, 2 if gru.bidirectional else 1
        for layer in range(self.num_layers):
            per_direction = [self._onnx_weights(gru, layer, d) for d in range(self.directions)]
            w, r, b = zip(*per_direction, strict=True)
            self.register_buffer(f"w{layer}", torch.stack(w))
            self.register_buffer(f"r{layer}", torch.stack(r))
            self.register_buffer(f"b{layer}", torch.stack(b))

    def _onnx_weights(self, gru: nn.GRU, layer: int, d: int) -> tuple[torch.Tensor, ...]:
        sfx, hs = f"l{layer}{'_reverse' if d else ''}", self.hidden_size
        w_ih, w_hh = (getattr(gru, f"weight_{k}_{sfx}").detach() for k in ("ih", "hh"))
        biases = [getattr(gru, f"bias_{k}_{sfx}", None) for k in ("ih", "hh")]
        b = [w_ih.new_zeros(3 * hs) if v is None else v.detach() for v in biases]
        bias = torch.cat([_swap_gates(b[0], hs), _swap_gates(b[1], hs)])
        return _swap_gates(w_ih, hs), _swap_gates(w_hh, hs), bias

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        if x.dim() != 3:
            raise ValueError("OnnxGRU takes a batched (3-d) input")
        x = x.transpose(0, 1) if self.batch_first else x
        steps, batch = x.shape[:2]
        per_layer, hs = self.directions, self.hidden_size
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * per_layer, batch, hs)
        finals = []
        for layer in range(self.num_layers):
            weights = (getattr(self, f"{k}{layer}") for k in "wrb")
            h_layer = h0[layer * per_layer : (layer + 1) * per_layer]
            y, h_n = onnx_gru(x, h_layer, *weights, hs)
            x = y.permute(0, 2, 1, 3).reshape(steps, batch, per_layer * hs)
            finals.append(h_n)
        return (x.transpose(0, 1) if self.batch_first else x), torch.cat(finals)


def with_onnx_grus(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.GRU`` an :class:`OnnxGRU` (``model`` itself when it
    holds none)."""
    if not any(isinstance(m, nn.GRU) for m in model.modules()):
        return model
    if isinstance(model, nn.GRU):
        return OnnxGRU(model)
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.GRU):
                setattr(parent, name, OnnxGRU(child))
    return model
