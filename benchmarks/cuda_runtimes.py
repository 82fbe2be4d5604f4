"""Float precisions of the GRU model in the ``cuda`` runtime, timed side by side on one GPU.

python -m benchmarks.cuda_runtimes                      # DyAD brand 2 (H = 1024, T = 128)
python -m benchmarks.cuda_runtimes --model dyad_tiny    # a smoke run

Every variant is the project's own (``+method=fp16`` / ``bf16`` of the same random fp32 model),
deployed as a run deploys it (:func:`src.runtimes.cuda.on_cuda`: a copy on the GPU, its GRU
weights flattened into one chunk) and, for the half variants, also as the runtime deployed them
before the weights were flattened, to show what that costs. All are timed interleaved by the
latency harness, host memory to host memory, and compared with fp32 on the GPU (ratio of medians
with a bootstrap interval over the calls of each round). Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from benchmarks.common import print_table, write_csv
from src.core import schema
from src.measure.latency import LatencySpec, speedup_intervals, summarise, time_interleaved
from src.methods import MethodContext, apply_method, method_config
from src.models import create_model, model_defaults
from src.runtimes.cuda import OnDevice, on_cuda

HALVES = {
    "fp16": {"name": "fp16", "kind": "half", "dtype": "fp16"},
    "bf16": {"name": "bf16", "kind": "half", "dtype": "bf16"},
}


def unflattened(model: nn.Module) -> nn.Module:
    """The variant on the GPU as the runtime put it there before it flattened GRU weights."""
    device = torch.device("cuda", 0)
    return OnDevice(copy.deepcopy(model).to(device).eval(), device, model)


def variants(name: str) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    fp32 = create_model(name).eval()
    out = {"fp32": on_cuda(fp32)[0]}
    for label, config in HALVES.items():
        half = apply_method(fp32, method_config(config), MethodContext())
        out[label] = on_cuda(half)[0]
        out[f"{label} unflattened"] = unflattened(half)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dyad_brand2")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    models = variants(args.model)
    channels = len(model_defaults(args.model)["channels"])
    spec = LatencySpec(
        (1, args.batch), warmup=5, iters=args.iters, threads=None, rounds=3, block_seconds=None
    )
    timings = time_interleaved(models, lambda b: torch.randn(b, 128, channels), spec)
    summary = summarise(timings, list(models))
    rows = [_row(label, summary, timings, args.batch) for label in models]
    header = ("variant", "ms bs1", f"ms bs{args.batch}", "vs fp32 bs1", f"vs fp32 bs{args.batch}")
    print_table(f"{args.model} on {torch.cuda.get_device_name(0)}", rows, header)
    write_csv("cuda_runtimes", [args.model, f"bs{args.batch}"], rows, header)


def _row(label: str, summary: dict, timings: dict, batch: int) -> tuple[str, ...]:
    ms1, msn = (summary[label][schema.latency_p50(b)] for b in (1, batch))
    ref1, refn = (summary["fp32"][schema.latency_p50(b)] for b in (1, batch))
    ci = speedup_intervals(timings, "fp32", label)
    cells = []
    for ratio, name in ((ref1 / ms1, schema.SPEEDUP_BS1), (refn / msn, schema.SPEEDUP_BSN)):
        low, high = (ci.get(end) for end in schema.interval(name))
        cells.append(f"{ratio:.2f}x [{low:.2f}, {high:.2f}]")
    return (label, f"{ms1:.2f}", f"{msn:.2f}", *cells)


if __name__ == "__main__":
    main()
