"""A GRU decomposed into ``nn.Linear`` projections and elementwise gate math.

Eager-mode static quantization, QAT and PT2E quantize ``nn.Linear``/``nn.Conv*`` modules only;
``nn.GRU`` runs as one fused kernel they cannot see into. :class:`DecomposedGRU` computes the same
function as ``nn.GRU`` (same constructor, forward contract and gate equations) but holds each
(layer, direction)'s input and hidden projections as ``nn.Linear`` submodules that it always
*calls as modules*, so a quantization tool can swap or wrap them, and does the gate math in a
Python loop over time.

Example:
    >>> model = decompose_grus(create_model("dyad_tiny"))  # every nn.GRU -> DecomposedGRU
    >>> model = recompose_grus(model)  # and back, while the projections are plain nn.Linear
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from src.models.export import register_export_rewrite


class GRUProjections(nn.Module):
    """One (layer, direction) of a GRU: ``ih`` and ``hh`` map to the r, z, n gate chunks (3H).

    Args:
        input_size: Features of this layer's input.
        hidden_size: Hidden size H.
        bias: Whether both projections carry a bias (``b_i*`` and ``b_h*``).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, **factory) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, 3 * hidden_size, bias, **factory)
        self.hh = nn.Linear(hidden_size, 3 * hidden_size, bias, **factory)

    def forward(self, x: torch.Tensor, h: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Run the recurrence over a time-major sequence.

        Args:
            x: Input (T, B, input_size).
            h: Initial state (B, H).
            reverse: Consume x_T..x_1; the output at t is then the state after x_T..x_t.

        Returns:
            States (T, B, H) in the input's time order; the last consumed one is the final state.
        """
        hs = self.hidden_size
        # One GEMM for the whole sequence; only the hidden projection must wait for h.
        gi_rz, gi_n = self.ih(x).split([2 * hs, hs], dim=-1)
        # Per-step views via unbind: its backward stacks the step gradients once, where
        # indexing gi[t] would zero-fill a whole (T, B, .) gradient per step (O(T^2) in QAT).
        gi_rz, gi_n = gi_rz.unbind(0), gi_n.unbind(0)
        steps = range(x.size(0) - 1, -1, -1) if reverse else range(x.size(0))
        outputs: list[torch.Tensor] = [h] * x.size(0)
        for t in steps:
            gh_rz, gh_n = self.hh(h).split([2 * hs, hs], dim=-1)
            r, z = torch.sigmoid(gi_rz[t] + gh_rz).chunk(2, dim=-1)
            # As in PyTorch, r gates the hidden projection *including* its bias b_hn.
            n = torch.tanh(gi_n[t] + r * gh_n)
            h = n + z * (h - n)  # = (1 - z) * n + z * h with one multiply fewer
            outputs[t] = h
        return torch.stack(outputs)


class DecomposedGRU(nn.Module):
    """Drop-in ``nn.GRU`` (same arguments, shapes and results) built from :class:`GRUProjections`.

    ``cells[layer * D + direction]`` holds the projections matching ``nn.GRU``'s
    ``weight_ih_l{layer}{'_reverse' if direction else ''}`` etc. (D = 2 if bidirectional else 1).

    Args:
        input_size: Features of the input.
        hidden_size: Hidden size H.
        num_layers: Stacked layers.
        bias: Whether the projections carry biases.
        batch_first: Input and output are (B, T, .) instead of (T, B, .).
        dropout: Dropout on every layer's output except the last, in training mode only.
        bidirectional: Add a direction that reads the sequence backwards.
        device: Device of the parameters.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if min(input_size, hidden_size, num_layers) < 1:
            raise ValueError("input_size, hidden_size and num_layers must all be >= 1")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        sizes = [input_size] + [hidden_size * self.num_directions] * (num_layers - 1)
        self.cells = nn.ModuleList(
            GRUProjections(size, hidden_size, bias, device=device, dtype=dtype)
            for size in sizes
            for _ in range(self.num_directions)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.GRU's initialisation, U(-1/sqrt(H), 1/sqrt(H)), not nn.Linear's fan-in one."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same contract as ``nn.GRU.forward``.

        Args:
            x: (B, T, input_size) if ``batch_first`` else (T, B, input_size); or unbatched
                (T, input_size).
            h0: Initial states (D * num_layers, B, H) (or (D * num_layers, H) unbatched),
                layer-major then direction; zeros if None.

        Returns:
            ``(output, h_n)``: the last layer's states (.., T, D * H) in the input's layout, and
            every (layer, direction)'s final state (D * num_layers, B, H).
        """
        unbatched = x.dim() == 2
        if unbatched:  # nn.GRU treats (T, in) as one sequence whatever batch_first says
            x, h0 = x.unsqueeze(1), None if h0 is None else h0.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)  # time-major inside, so x[t] is a contiguous slice
        x, h_n = self._run_layers(x, self._check_inputs(x, h0))
        if unbatched:
            return x.squeeze(1), h_n.squeeze(1)
        return (x.transpose(0, 1) if self.batch_first else x), h_n

    def _run_layers(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-major x (T, B, in) -> last layer's output (T, B, D * H) and h_n."""
        finals: list[torch.Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = F.dropout(x, self.dropout, self.training)
            outs = []
            for d in range(self.num_directions):
                idx = layer * self.num_directions + d
                out = self.cells[idx](x, h0[idx], reverse=d == 1)
                finals.append(out[-1] if d == 0 else out[0])  # backward ends at t = 0
                outs.append(out)
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        return x, torch.stack(finals)

    def _check_inputs(self, x: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        """Validate time-major ``x`` (T, B, in) and return ``h0`` (zeros if None)."""
        if x.dim() != 3 or x.size(-1) != self.input_size or x.size(0) == 0:
            raise ValueError(
                f"DecomposedGRU expects a non-empty input (.., {self.input_size}) with 2 or 3 "
                f"dims, got shape {tuple(x.shape)}"
            )
        expected = (self.num_layers * self.num_directions, x.size(1), self.hidden_size)
        if h0 is None:
            return x.new_zeros(expected)
        if tuple(h0.shape) != expected:
            raise ValueError(f"h0 must have shape {expected}, got {tuple(h0.shape)}")
        return h0

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in _config(self).items())


def _weight_names(layer: int, direction: int) -> tuple[str, str, str, str]:
    """nn.GRU's parameter names for one (layer, direction): W_ih, W_hh, b_ih, b_hh."""
    sfx = f"l{layer}{'_reverse' if direction else ''}"
    return f"weight_ih_{sfx}", f"weight_hh_{sfx}", f"bias_ih_{sfx}", f"bias_hh_{sfx}"


def gru_weight_name(index: int, which: str, num_directions: int) -> str:
    """``nn.GRU``'s name for the weight that ``cells[index].<which>`` (``ih`` / ``hh``) holds in
    the decomposed GRU: ``cells.3.hh`` of a bidirectional GRU is ``weight_hh_l1_reverse``."""
    names = _weight_names(*divmod(index, num_directions))
    return names[{"ih": 0, "hh": 1}[which]]


def _copy_weights(gru: nn.GRU, dec: DecomposedGRU, to_dec: bool) -> None:
    """Copy every weight between ``gru`` and ``dec`` (direction set by ``to_dec``)."""
    with torch.no_grad():
        for idx, cell in enumerate(dec.cells):
            names = _weight_names(*divmod(idx, dec.num_directions))
            pairs = [(cell.ih, "weight", names[0]), (cell.hh, "weight", names[1])]
            if dec.bias:
                pairs += [(cell.ih, "bias", names[2]), (cell.hh, "bias", names[3])]
            for lin, attr, name in pairs:
                ours, theirs = getattr(lin, attr), getattr(gru, name)
                (ours if to_dec else theirs).copy_(theirs if to_dec else ours)


def _config(m: nn.GRU | DecomposedGRU) -> dict:
    """The constructor arguments shared by nn.GRU and DecomposedGRU."""
    keys = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout")
    return {k: getattr(m, k) for k in keys} | {"bidirectional": m.bidirectional}


def from_gru(gru: nn.GRU) -> DecomposedGRU:
    """A :class:`DecomposedGRU` computing the same function as ``gru`` (weights copied).

    The result has ``gru``'s device, dtype and training flag.
    """
    ref = gru.weight_ih_l0
    dec = DecomposedGRU(**_config(gru), device=ref.device, dtype=ref.dtype)
    _copy_weights(gru, dec, to_dec=True)
    return dec.train(gru.training)


def to_gru(dec: DecomposedGRU) -> nn.GRU:
    """The ``nn.GRU`` equivalent of ``dec`` (weights copied, device/dtype/training kept).

    Raises:
        TypeError: A projection is no longer a plain ``nn.Linear`` (e.g. it was quantized,
            wrapped or swapped for a QAT module), so it has no float weights to hand back.
    """
    for name, proj in dec.cells.named_modules():
        if name.endswith((".ih", ".hh")) and type(proj) is not nn.Linear:
            raise TypeError(
                f"to_gru needs plain nn.Linear projections; cells.{name} is {type(proj).__name__}"
            )
    ref = dec.cells[0].ih.weight
    gru = nn.GRU(**_config(dec), device=ref.device, dtype=ref.dtype)
    _copy_weights(gru, dec, to_dec=False)
    return gru.train(dec.training)


def _replace_modules(model: nn.Module, cls: type, convert: Callable) -> nn.Module:
    """Replace every ``cls`` submodule of ``model`` (or ``model`` itself) by ``convert(it)``.

    A module shared by several parents is converted once and stays shared.
    """
    if isinstance(model, cls):
        return convert(model)
    done: dict[nn.Module, nn.Module] = {}  # modules hash by identity
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, cls):
                if child not in done:
                    done[child] = convert(child)
                setattr(parent, name, done[child])
    return model


def decompose_grus(model: nn.Module) -> nn.Module:
    """Replace, in place, every ``nn.GRU`` in ``model`` by its :func:`from_gru` equivalent.

    Attribute names are kept, so the parent's forward works unchanged.

    Returns:
        ``model`` (or the converted module if ``model`` itself is an ``nn.GRU``).
    """
    return _replace_modules(model, nn.GRU, from_gru)


def recompose_grus(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`DecomposedGRU` in ``model`` by :func:`to_gru` of it.

    Raises:
        TypeError: See :func:`to_gru`.
    """
    return _replace_modules(model, DecomposedGRU, to_gru)


# Runtimes: exported, a decomposed GRU is one nn.GRU again (one GRU node, which the ONNX runtime
# unrolls itself where its projections were int8). torch.compile takes no int8 variant with a GRU:
# PT2E has no int8 GRU, and a decomposed GRU's time loop, unrolled by dynamo, takes inductor more
# than 5 minutes to trace even for dyad_tiny at T=128 (measured), at every batch size; ONNX
# Runtime runs it instead (unrolled MatMuls, seconds).
NO_INT8_COMPILE = (
    "PT2E has no int8 GRU, and compiling its unrolled time loop takes minutes per batch size"
)
register_export_rewrite(DecomposedGRU, to_gru, int8_compile=NO_INT8_COMPILE)
register_export_rewrite(nn.GRU, int8_compile=NO_INT8_COMPILE, int8_only=True)
