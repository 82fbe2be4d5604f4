"""Every variant in every deployment runtime against fp32 eager, side by side in one process.

    python -m benchmarks.runtimes                 # DyAD H=256 and brand 2 (H=1024), the CNN
    python -m benchmarks.runtimes --part dyad     # one family (--part brand3, brand2: one width)
    python -m benchmarks.runtimes --part cnn
    python -m benchmarks.runtimes --part brand2 --runtimes eager,onnxruntime --methods distill_h128

For each architecture (the default DyAD, brand 3's H = 256; the seed's brand-2 DyAD, 51.4 MB; the
default CNN, 18.3 MB) every method
is applied to the same fp32 weights (calibrated / fine-tuned two batches with the task's own
loss, as ``benchmarks.compression``), deployed to each runtime the pipeline knows
(:mod:`src.runtimes`), and timed interleaved with the fp32 model in eager, the one
reference of every ratio. Beside them, what a user would do without us: the fp32 export in ONNX
Runtime, and ORT's own quantizers applied to that export after ORT's recommended
``quant_pre_process`` (dynamic: every op ORT's dynamic quantizer knows, which leaves the GRU in
fp32; static QDQ calibrated on the same batches).
Speedups carry a 95 % bootstrap interval over the interleaved rounds. Speed only: untrained
weights say nothing about task metrics, which the leaderboard's runtime table reports from real
runs (its parity and verdict columns).
"""

from __future__ import annotations

import argparse
import tempfile
from itertools import islice
from pathlib import Path

from benchmarks.common import print_table, write_csv
from benchmarks.compression import arch_setup
from src.core import schema
from src.measure.latency import LatencySpec, speedup_intervals, summarise, time_interleaved
from src.measure.report import CastInputs
from src.methods import apply_method, method_config
from src.runtimes.base import DeployContext, deploy

DYAD_METHODS = [
    {"name": "dynamic"},
    {"name": "static"},
    {"name": "qat"},
    {"name": "distill"},
    {
        "name": "distill_dynamic",
        "kind": "chain",
        "steps": [{"name": "distill"}, {"name": "dynamic"}],
    },
]
H128 = {"hidden_size": 128, "latent_size": 16}  # a smaller brand-2 student: the 30x question
METHODS = {
    "dyad_brand3": DYAD_METHODS,
    "dyad_brand2": [
        *DYAD_METHODS,
        {"name": "distill_h128", "kind": "distill", "student": H128},
        {
            "name": "distill_h128_dynamic",
            "kind": "chain",
            "steps": [{"name": "distill", "student": H128}, {"name": "dynamic"}],
        },
        {  # static int8 in ORT beat fp32's best at batch 128 at H = 256 (the unrolled GRU)
            "name": "distill_h128_static",
            "kind": "chain",
            "steps": [{"name": "distill", "student": H128}, {"name": "static"}],
        },
    ],
    "cnn": [{"name": "dynamic"}, {"name": "static"}, {"name": "qat"}],
}
SPECS = {
    "dyad_brand3": LatencySpec(
        batch_sizes=(1, 128), warmup=1, iters=5, rounds=3, threads=2, block_seconds=1.0
    ),
    "dyad_brand2": LatencySpec(
        batch_sizes=(1, 128), warmup=1, iters=5, rounds=2, threads=2, block_seconds=2.0
    ),
    "cnn": LatencySpec(batch_sizes=(1, 64), warmup=3, iters=10, rounds=3, threads=2),
}
RUNTIMES = ("eager", "onnxruntime", "compile")
TARGETS = (
    "DyAD brand 2: fastest deployable variant >= 30x fp32 eager at bs1 and bs128; static/QAT "
    "never slower than fp32 in the same runtime; CNN: best int8 >= ORT static int8 at bs1, bs64"
)


def variants(name: str, tmp: Path, only: set[str] | None = None):
    """(data, fp32 model, {label: compressed model}) on the same fp32 weights."""
    data, base, context, student = arch_setup(name, tmp)
    made = {}
    for values in METHODS[name]:
        if only is not None and values["name"] not in only:
            continue
        if values["name"] == "distill":
            values = {**values, "student": student}
        if values.get("kind") == "chain":
            values = {
                **values,
                "steps": [
                    {"student": student, **s} if s["name"] == "distill" else s
                    for s in values["steps"]
                ],
            }
        made[values["name"]] = apply_method(base, method_config(values), context).eval()
    return data, base, made


def deployed(data, base, made, tmp: Path, threads: int, runtimes=RUNTIMES) -> tuple[dict, dict]:
    """Every model to time (label -> callable module) and its int8 kernel count."""
    calibration = [b["x"] for b in islice(data.calibration_dataloader(), 4)]
    example = data.example_inputs(2)
    models, int8 = {"fp32 eager": CastInputs(base)}, {}
    for label, model in {"fp32": base, **made}.items():
        for runtime in runtimes:
            if label == "fp32" and runtime == "eager":
                continue
            context = DeployContext(example, calibration, tmp / f"{label}-{runtime}", threads)
            try:
                out = deploy(runtime, model, context)
            except Exception as err:  # a runtime that cannot take it: one line, go on
                print(f"{label} in {runtime}: skipped ({err})")
                continue
            key = f"{label} {runtime}"
            models[key] = out.module if runtime != "eager" else CastInputs(out.module)
            if out.int8_ops is not None and out.float_ops is not None:
                int8[key] = f"{out.int8_ops}/{out.int8_ops + out.float_ops}"
    models.update(ort_own(base, example, calibration, tmp, threads, int8))
    return models, int8


def ort_own(base, example, calibration, tmp: Path, threads: int, int8: dict) -> dict:
    """What a user gets from ORT alone: its quantizers on the fp32 export after ORT's own
    ``quant_pre_process`` (shape inference and graph optimization, as ORT's docs ask), weights
    per channel; ``int8`` gets what each covered (int8 / all compute kernels ORT runs)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from src.runtimes.onnxruntime.export import export_onnx
    from src.runtimes.onnxruntime.quantize import CalibrationReader
    from src.runtimes.onnxruntime.session import OrtModel, OrtModule, op_counts

    fp32 = export_onnx(base, example, tmp / "own" / "fp32.onnx", optimize=True).path
    prepared = tmp / "own" / "fp32.pre.onnx"
    quant_pre_process(fp32, prepared)
    out = {}
    dyn, qdq = tmp / "own" / "dynamic.onnx", tmp / "own" / "static.onnx"
    quantize_dynamic(prepared, dyn, weight_type=QuantType.QInt8, per_channel=True)
    quantize_static(
        prepared,
        qdq,
        CalibrationReader("x", calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    for label, path in (("ORT's own dynamic", dyn), ("ORT's own static QDQ", qdq)):
        optimized = path.with_suffix(".opt.onnx")
        runtime = OrtModel(path, threads, optimized_path=optimized)
        out[label] = OrtModule(runtime, base, example)
        quantized, floats = op_counts(optimized)
        int8[label] = f"{quantized}/{quantized + floats}"
    return out


def rows(name: str, tmp: Path, runtimes=RUNTIMES, only=None) -> list[tuple[str, ...]]:
    spec = SPECS[name]
    data, base, made = variants(name, tmp, only)
    models, int8 = deployed(data, base, made, tmp, spec.threads, runtimes)
    timings = time_interleaved(models, data.example_inputs, spec)
    summary = summarise(timings, list(models))
    largest = max(spec.batch_sizes)
    ms = {k: [summary[k][f"latency/ms_p50_bs{b}"] for b in (1, largest)] for k in models}
    best = fastest_forms(ms)
    out = []
    for label in models:
        ci = speedup_intervals(timings, "fp32 eager", label)
        (ms1, msn), (ref1, refn) = ms[label], ms["fp32 eager"]
        out.append(
            (
                name,
                label,
                f"{ms1:.2f}",
                f"{msn:.1f}",
                _ratio(ref1 / ms1, ci, "latency/speedup_bs1"),
                _ratio(refn / msn, ci, "latency/speedup_bsN"),
                "" if int8.get(label) is None else str(int8[label]),
                best.get(label, ""),
            )
        )
    return out


def fastest_forms(ms: dict[str, list[float]]) -> dict[str, str]:
    """``{label: "bs1, bsN"}``: where a form (``"<method> <runtime>"``) is its method's fastest
    (by median; ORT's own quantizers are methods of their own)."""
    methods: dict[str, list[str]] = {}
    for label in ms:
        method = label if label.startswith("ORT's own") else label.rsplit(" ", 1)[0]
        methods.setdefault(method, []).append(label)
    marks: dict[str, list[str]] = {}
    for labels in methods.values():
        for i, batch in enumerate(("bs1", "bsN")):
            marks.setdefault(min(labels, key=lambda k: ms[k][i]), []).append(batch)
    return {label: ", ".join(m) for label, m in marks.items()}


def _ratio(value: float, ci: dict, key: str) -> str:
    low, high = (ci.get(name) for name in schema.interval(key))
    return f"{value:.2f}x" if low is None else f"{value:.2f}x [{low:.2f}, {high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = {
        "all": ["dyad_brand3", "dyad_brand2", "cnn"],
        "dyad": ["dyad_brand3", "dyad_brand2"],
        "brand3": ["dyad_brand3"],
        "brand2": ["dyad_brand2"],
        "cnn": ["cnn"],
    }
    parser.add_argument("--part", choices=tuple(parts), default="all")
    parser.add_argument(
        "--runtimes",
        default=",".join(RUNTIMES),
        help="comma-separated (compile takes minutes per DyAD model and batch size)",
    )
    parser.add_argument("--methods", help="comma-separated method labels to keep (default: all)")
    args = parser.parse_args()
    runtimes = tuple(args.runtimes.split(","))
    only = set(args.methods.split(",")) if args.methods else None
    names = parts[args.part]
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            table += rows(name, Path(tmp) / name, runtimes, only)
    header = (
        "arch",
        "variant x runtime",
        "p50 ms bs1",
        "p50 ms bsN",
        "vs fp32 eager bs1",
        "vs fp32 eager bsN",
        "int8/compute kernels",
        "fastest of its method",
    )
    print_table(f"Runtimes, side by side (targets: {TARGETS})", table, header)
    setup = [args.part, f"t{SPECS[names[0]].threads}"]
    if runtimes != RUNTIMES:
        setup.append("-".join(runtimes))
    if only:
        setup.append("-".join(sorted(only)))
    write_csv("runtimes", setup, table, header)


if __name__ == "__main__":
    main()
