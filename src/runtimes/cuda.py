"""The ``cuda`` runtime: a variant on the GPU, timed from host memory to host memory.

A research group trains on GPUs and some variants ship there; their latency is its own runtime
entry (``latency/cuda/*``), never mixed with the CPU numbers. Only variants whose weights are
ordinary tensors run there (fp32, fp16, bf16 and the pruned or distilled fp32 ones): torch.ao's
int8 kernels exist for the CPU alone, so an int8 variant is a one-line skip pointing to the CPU
runtimes. Without a CUDA device every variant is that one-line skip, and the run goes on.

Each call copies the batch to the device, runs, and copies the outputs back: that wait is what a
caller sees, and the copy back synchronises, so the host clock times the GPU work honestly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils._pytree import tree_map

from src.models.util import input_dtype
from src.quant.introspect import holds_packed_weights
from src.runtimes.base import (
    BehindEager,
    DeployContext,
    Deployed,
    RuntimeUnavailable,
    register_runtime,
)


class OnDevice(BehindEager):
    """``model`` on ``device``, called with host tensors and answering with host tensors.

    Float inputs are cast to the model's own dtype on the way (a half-precision variant is fed
    as a deployment would feed it), and what the eager model has besides ``forward`` (DyAD's
    ``split_target``, which the task's evaluation calls) comes from the eager model.
    """

    def __init__(self, model: nn.Module, device: torch.device, eager: nn.Module) -> None:
        super().__init__(eager)
        self.model, self.device, self.dtype = model, device, input_dtype(model)

    @torch.no_grad()
    def forward(self, *args):
        moved = tree_map(self._to_device, args)
        out = self.model(*moved)
        return tree_map(lambda t: t.cpu() if torch.is_tensor(t) else t, out)

    def _to_device(self, value):
        if not torch.is_tensor(value):
            return value
        dtype = self.dtype if value.is_floating_point() else value.dtype
        return value.to(self.device, dtype, non_blocking=True)


@register_runtime("cuda")
def deploy(model: nn.Module, context: DeployContext) -> Deployed:
    """The variant on the first GPU; CPU-only int8 is a skip."""
    module, form = on_cuda(model)
    return Deployed(module, None, None, None, form)


def on_cuda(model: nn.Module) -> tuple[nn.Module, str]:
    """A copy of ``model`` on the first CUDA device and a description of where it runs.

    Raises:
        RuntimeUnavailable: No CUDA device, or int8 weights (CPU-only kernels).
    """
    if not torch.cuda.is_available():
        raise RuntimeUnavailable("no CUDA device here; the GPU runtime runs where one is")
    if any(holds_packed_weights(m) for m in model.modules()):
        raise RuntimeUnavailable(
            "int8 (torch.ao) kernels run on the CPU only; see its eager, compile and "
            "onnxruntime rows"
        )
    device = torch.device("cuda", 0)
    moved = copy.deepcopy(model).to(device).eval()
    for module in moved.modules():
        if isinstance(module, nn.RNNBase):  # one contiguous weight chunk, not a copy per call
            module.flatten_parameters()
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in moved.parameters()})
    return OnDevice(moved, device, model), (
        f"PyTorch eager on {torch.cuda.get_device_name(device)} ({', '.join(dtypes)})"
    )
