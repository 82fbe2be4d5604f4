"""Honest measurement of model variants: size (quantization-aware), comparative latency, context.

``size``, ``latency`` (interleaved timing, speedup intervals), ``environment`` (the machine and
settings as tags), ``precision`` (int8 coverage per layer) and ``report`` (all of it for one run).
Where a variant is deployed to be timed (ONNX Runtime, torch.compile, a GPU) is ``src.runtimes``.
"""

from src.measure.environment import cpu_model, isa_flags, measurement_tags
from src.measure.latency import LatencySpec, compare_latency, speedups, time_calls
from src.measure.size import count_weights, size_metrics, state_dict_bytes

__all__ = [
    "LatencySpec",
    "compare_latency",
    "count_weights",
    "cpu_model",
    "isa_flags",
    "measurement_tags",
    "size_metrics",
    "speedups",
    "state_dict_bytes",
    "time_calls",
]
