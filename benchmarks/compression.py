"""Every compression method against fp32, side by side: size ratio, speedups, task-metric deltas.

    python -m benchmarks.compression              # arch + task (about 15 minutes on 2 cores)
    python -m benchmarks.compression --part arch  # DyAD brand-2 architecture and default CNN
    python -m benchmarks.compression --part task  # the real runs on the default data
    python -m benchmarks.compression --part compact  # prune/distill/chains, DyAD brand 2 trained

``arch``: the architectures themselves (DyAD brand 2, H=1024, 51.4 MB; the 18.3 MB CNN), each
method applied to the same fp32 weights (calibrated / fine-tuned two batches with the task's own
loss), size and latency measured interleaved with fp32 in this process. Task metrics need trained
models, so ``task`` runs ``src.train [+method=...]`` in process on the default data of each
family (a private MLflow store) and reads size, speedup and the AUROC / accuracy delta from the
runs. ``compact``: the brand-2 architecture (H=1024) trained on the default data (one epoch),
then structured/unstructured pruning, distillation and the chains, read back from the logged runs
(about 45 minutes on 2 cores). Data, task, students and training all come from the same configs
and pipeline as ``python -m src.train``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.common import print_table, write_csv
from src.cli.jobs import composed, train_methods
from src.cli.specs import resolved
from src.core import schema
from src.data.sources import build_datamodule
from src.measure.latency import LatencySpec, compare_latency, speedups
from src.measure.precision import coverage_report
from src.measure.report import CastInputs, size_of
from src.methods import MethodContext, apply_method, method_config
from src.models import create_model
from src.pipeline import TrainerSpec
from src.pipeline.fit import Fitter
from src.tasks import OptimSpec, create_task
from src.tracking.store import RunStore

METHODS = [
    {"name": "dynamic"},
    {"name": "dynamic", "dtype": "fp16"},
    {"name": "static"},
    {"name": "qat"},
    {"name": "fp16", "kind": "half", "dtype": "fp16"},
    {"name": "bf16", "kind": "half", "dtype": "bf16"},
]
# The family's reference architecture on the default data (its config composes as src.train's).
FAMILIES = {
    "dyad_brand3": ["experiment=dyad_brand3"],
    "dyad_brand2": ["experiment=dyad_brand2", "data.brand=3"],
    "cnn": ["experiment=cnn_digits", "model=cnn"],
}
TASK_METHODS = ["baseline", "dynamic", "static", "qat", "fp16", "bf16"]
TARGETS = "int8 size <= 0.26x; dynamic >= 2x at bs1 on DyAD; static >= 3x at bsN on the CNN"
ARCH_HEADER = ("model", "method", "MB", "size ratio", "speedup bs1", "speedup bsN", "int8 frac")
RATIOS = ("delta", "size ratio", "speedup bs1", "speedup bsN")
TASK_HEADER = ("model", "method", "metric", *RATIOS)
COMPACT_HEADER = ("model", "method", "AUROC", *RATIOS)
COMPACT_TARGETS = (
    "DyAD brand 2: structured prune H/2 <= 0.3x size and >= 2x at bs1; distill (H 256) <= 0.1x; "
    "distill_dynamic <= 0.03x; |delta AUROC| <= 0.02"
)


def compact_methods(student: dict) -> list[dict]:
    """Pruning, distillation and chains, with the family's default student."""
    return [
        {"name": "prune", "structured": False, "sparsity": 0.5},
        {"name": "prune", "structured": True, "sparsity": 0.5},
        {"name": "distill", "student": student},
        {
            "name": "prune_dynamic",
            "kind": "chain",
            "steps": [{"name": "prune", "structured": True}, {"name": "dynamic"}],
        },
        {
            "name": "distill_dynamic",
            "kind": "chain",
            "steps": [{"name": "distill", "student": student}, {"name": "dynamic"}],
        },
    ]


def _label(values: dict) -> str:
    if values.get("kind") in ("chain", "half") or "student" in values:
        return values["name"]
    return "-".join(str(v) for v in values.values())


def family_setup(name: str, tmp: Path):
    """The family's data (set up), task and default student, from its composed train config."""
    values = resolved(composed(FAMILIES[name], tmp))
    return build_datamodule(values["data"]), create_task(values["task"]), values["student"]


def arch_setup(name: str, tmp: Path):
    """``(data, fp32 model, method context, student)``: the architecture with seed-0 weights and
    a context whose fine-tuning runs two batches with the task's own loss (enough to exercise
    prepare -> train -> convert)."""
    data, task, student = family_setup(name, tmp)
    torch.manual_seed(0)
    base = create_model(name, **_arch_kwargs(name)).eval()
    trainer = TrainerSpec(
        1, {"limit_train_batches": 2, "enable_progress_bar": False, "enable_model_summary": False}
    )
    tuner = Fitter(task, data, OptimSpec(lr=1e-3), trainer, None, tmp)
    return data, base, MethodContext(data, tuner.fit, task=task), student


def arch_rows(name: str, spec: LatencySpec, tmp: Path) -> list[tuple[str, ...]]:
    data, base, context, student = arch_setup(name, tmp)
    rows = []
    for values in METHODS + compact_methods(student):
        model = apply_method(base, method_config(values), context)
        timing = compare_latency(
            {"fp32": CastInputs(base), "m": CastInputs(model)}, data.example_inputs, spec
        )
        size, fast = size_of(model, base), speedups(timing["fp32"], timing["m"])
        rows.append(
            (
                name,
                _label(values),
                f"{size['size/mb']:.2f}",
                f"{size['size/ratio']:.3f}",
                f"{fast['latency/speedup_bs1']:.2f}x",
                f"{fast['latency/speedup_bsN']:.2f}x",
                f"{coverage_report(model)[1]:.2f}",
            )
        )
    return rows


def _arch_kwargs(name: str) -> dict:
    if name.startswith("cnn"):
        return {"in_channels": 1, "num_classes": 10, "image_size": 32}
    return {}


def run_arch(dyad_batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = arch_rows(
            "dyad_brand2",
            LatencySpec(batch_sizes=(1, dyad_batch), warmup=1, iters=3, rounds=2, threads=2),
            Path(tmp),
        )
        rows += arch_rows(
            "cnn",
            LatencySpec(batch_sizes=(1, 64), warmup=3, iters=10, rounds=3, threads=2),
            Path(tmp),
        )
    print_table(
        f"architectures: size and speed vs fp32 (DyAD bsN={dyad_batch}, CNN bsN=64)",
        rows,
        ARCH_HEADER,
    )
    write_csv("compression", ["arch", f"bsn{dyad_batch}"], rows, ARCH_HEADER)
    print(f"targets: {TARGETS}")


def run_task() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        for label, overrides in (
            ("dyad (default)", []),
            ("cnn (digits)", ["experiment=cnn_digits"]),
        ):
            common = [
                *overrides,
                f"logger.tracking_uri={store}",
                "trainer.enable_progress_bar=false",
            ]
            train_methods(common, TASK_METHODS, Path(tmp) / "runs")
            rows += _task_rows(store, label.split()[0])
    print_table(
        "default data: task metric vs fp32, from the logged runs",
        rows,
        TASK_HEADER,
    )
    write_csv("compression", ["task"], rows, TASK_HEADER)
    print("target: |delta| <= 0.02")


COMPACT_SETUP = [
    "experiment=dyad_brand2",  # H=1024, L=24, 4 inputs: 12.8 M parameters
    "data.brand=3",  # the default generated data (brand-3 layout carries every channel)
    "optim.lr=0.002",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "data.latency_batch_size=16",
    "benchmark.warmup=1",
    "benchmark.iters=3",
    "benchmark.rounds=2",
]


def run_compact(store: str | None) -> None:
    """Brand-2 DyAD trained once, then every pruning/distillation variant, in process."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{store or tmp + '/mlflow.db'}"
        common = [*COMPACT_SETUP, f"logger.tracking_uri={uri}"]
        out = Path(tmp) / "runs"
        train_methods([*common, "method.structured=true"], ["prune"], out)  # baseline on the way
        train_methods(common, ["prune", "distill", "distill_dynamic", "prune_dynamic"], out)
        rows = _task_rows(uri, "dyad_brand2")
    print_table(
        "DyAD brand-2 architecture, default data, 1 epoch: from the logged runs",
        rows,
        COMPACT_HEADER,
    )
    write_csv("compression", ["compact", "dyad_brand2"], rows, COMPACT_HEADER)
    print(f"targets: {COMPACT_TARGETS}")


def _task_rows(uri: str, model_prefix: str) -> list[tuple[str, ...]]:
    """One row per method run whose model starts with ``model_prefix``, oldest first."""
    rows = []
    runs = RunStore.open(uri).search(order_by=["attributes.start_time ASC"])
    for run in runs:
        tags, m = run.data.tags, run.data.metrics
        method, primary = tags.get(schema.METHOD), tags.get(schema.PRIMARY_METRIC, "")
        delta = schema.delta_of(primary)
        if method in (None, schema.BASELINE) or delta not in m:
            continue
        if not tags[schema.MODEL].startswith(model_prefix):
            continue
        if run.data.params.get("method.structured") == "True":
            method += " (structured)"
        rows.append(
            (
                tags[schema.MODEL],
                method,
                f"{m[primary]:.4f}",
                f"{m[delta]:+.4f}",
                f"{m[schema.SIZE_RATIO]:.3f}",
                f"{m[schema.SPEEDUP_BS1]:.2f}x",
                f"{m[schema.SPEEDUP_BSN]:.2f}x",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("arch", "task", "compact", "all"), default="all")
    parser.add_argument("--store", help="SQLite file kept for the compact part (default: temp)")
    parser.add_argument("--dyad-batch", type=int, default=128, help="N for DyAD brand 2")
    args = parser.parse_args()
    if args.part in ("arch", "all"):
        run_arch(args.dyad_batch)
    if args.part in ("task", "all"):
        run_task()
    if args.part == "compact":
        run_compact(args.store)


if __name__ == "__main__":
    main()
