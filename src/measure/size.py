"""Model size as shipped: serialized bytes, gzip bytes, and weight counts that survive quantization.

Quantized modules keep their weights in packed torchbind objects rather than in ``.parameters()``,
so ``sum(p.numel() for p in model.parameters())`` reports (nearly) zero for an int8 model. Here
every packed weight is unpacked and counted alongside the ordinary parameters, so an fp32 model and
its quantized twin report the same element count.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from src.core import schema
from src.quant.introspect import is_metadata, packed_tensors


def state_dict_bytes(model: nn.Module) -> bytes:
    """Serialize ``model.state_dict()`` exactly as a user would ship it.

    Args:
        model: Any module, float or quantized.

    Returns:
        The bytes ``torch.save(model.state_dict(), f)`` writes. Byte-identical to a file named
        ``archive.pt``: torch.save names the zip's inner folder after the file stem, so other
        names differ by a few header (and alignment) bytes per tensor.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def count_weights(model: nn.Module) -> tuple[int, int]:
    """Count weight and bias elements, including those packed inside quantized modules.

    BatchNorm running statistics and observer/fake-quant state are buffers or metadata and are not
    counted. For pruned modules (``torch.nn.utils.prune`` or parametrizations) the effective,
    masked tensor is counted, so the nonzero count reflects the pruning.

    Args:
        model: Any module: fp32/fp16/bf16, QAT-prepared, dynamically or statically quantized.

    Returns:
        ``(total, nonzero)`` element counts; quantized values count as zero when they dequantize
        to exactly zero.
    """
    total = nonzero = 0
    with torch.no_grad():
        for tensor in _weight_tensors(model):
            values = tensor.dequantize() if tensor.is_quantized else tensor
            total += values.numel()
            nonzero += int(torch.count_nonzero(values))
    return total, nonzero


def size_metrics(
    model: nn.Module,
    baseline_bytes: int | None = None,
    serialize: Callable[[nn.Module], bytes] | None = None,
) -> dict[str, float]:
    """Size metrics for a leaderboard row.

    Args:
        model: The model variant to measure.
        baseline_bytes: Serialized size of the reference model; adds ``size/ratio`` when given.
        serialize: Turns the model into the bytes that ship; defaults to
            :func:`state_dict_bytes`.

    Returns:
        ``size/mb`` and ``size/mb_gzip`` (decimal MB of the state_dict file, raw and gzip -9),
        ``size/params``, ``size/nonzero``, and ``size/ratio`` (bytes / baseline_bytes).

    Raises:
        ValueError: If ``baseline_bytes`` is not a positive number.
    """
    if baseline_bytes is not None and baseline_bytes <= 0:
        raise ValueError(
            f"baseline_bytes must be positive, got {baseline_bytes}; pass "
            "len(state_dict_bytes(baseline_model)) or None"
        )
    raw = (serialize or state_dict_bytes)(model)
    total, nonzero = count_weights(model)
    metrics = {
        schema.SIZE_MB: len(raw) / 1e6,
        schema.SIZE_MB_GZIP: len(gzip.compress(raw, compresslevel=9)) / 1e6,
        schema.SIZE_PARAMS: float(total),
        schema.SIZE_NONZERO: float(nonzero),
    }
    if baseline_bytes is not None:
        metrics[schema.SIZE_RATIO] = len(raw) / baseline_bytes
    return metrics


def sparse_bytes(state_dict: dict) -> bytes:
    """The state_dict as a sparse format would ship it: each float matrix (conv kernels viewed as
    2-D) stored as CSR with int32 indices when that is smaller than dense, else dense.

    At 50 % sparsity CSR costs as much as dense (4-byte value + 4-byte column per nonzero), so
    only high sparsity gains; this is the figure that says so.
    """
    packed = {}
    for key, tensor in state_dict.items():
        packed[key] = tensor
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dim() >= 2:
            parts = _csr(tensor.detach().reshape(tensor.shape[0], -1))
            if sum(p.numel() * p.element_size() for p in parts) < tensor.nbytes:
                packed[key] = {"shape": list(tensor.shape), "csr": parts}
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    return buffer.getvalue()


def _csr(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row pointers, column indices (int32) and values of a dense matrix."""
    alive = matrix != 0
    rows = torch.cat([torch.zeros(1, dtype=torch.long), alive.sum(dim=1).cumsum(0)])
    return rows.int(), alive.nonzero()[:, 1].int(), matrix[alive]


def _weight_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    """Yield every weight/bias tensor once: unpacked quantized ones and ordinary parameters."""
    seen: set[int] = set()  # tied parameters (same object in two modules) count once
    for module in model.modules():
        # Learnable fake-quant modules hold scale/zero_point as nn.Parameters (metadata, not
        # weights); ParametrizationList holds the *original* tensor, while the effective (e.g.
        # masked) one is read from the owning module below.
        if is_metadata(module) or isinstance(module, parametrize.ParametrizationList):
            continue
        yield from packed_tensors(module)
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield _effective(module, name, param)
        if parametrize.is_parametrized(module):
            yield from (getattr(module, name) for name in module.parametrizations)


def _effective(module: nn.Module, name: str, param: torch.Tensor) -> torch.Tensor:
    """Swap ``torch.nn.utils.prune``'s ``<name>_orig`` for the masked tensor the forward uses."""
    base = name.removesuffix("_orig")
    if base != name and hasattr(module, f"{base}_mask"):
        return getattr(module, base)
    return param
