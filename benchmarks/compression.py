"""Every compression method against fp32, side by side: size ratio, speedups, task-metric deltas.

    python -m benchmarks.compression              # both parts (about 15 minutes on 2 cores)
    python -m benchmarks.compression --part arch  # DyAD brand-2 architecture and default CNN
    python -m benchmarks.compression --part task  # the real sweeps on the default data
    python -m benchmarks.compression --part compact  # prune/distill/chains, DyAD brand-2 trained

``arch``: the architectures themselves (DyAD brand 2, H=1024, 51.4 MB; the 18.3 MB CNN), each
method applied to the same fp32 weights (calibrated / fine-tuned on real batches), size and
latency measured interleaved with fp32 in this process. Task metrics need trained models, so
``task`` runs ``python -m src.train -m +method=...`` on the default data of each family (a
private MLflow store) and reads size, speedup and the AUROC / accuracy delta from the runs.
``compact``: the brand-2 architecture (H=1024) trained on the default data (one epoch), then
structured/unstructured pruning, distillation (student H=256, L=16) and the chains through the
user's commands, read back from the logged runs (about 45 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from itertools import islice

import torch
from mlflow.tracking import MlflowClient

from benchmarks.common import ROOT, ensure_data, print_table
from src.data.battery import BatteryDataModule
from src.data.sources import DATAMODULES
from src.measure.latency import LatencySpec, compare_latency, speedups
from src.measure.precision import coverage_report
from src.measure.report import CastInputs, size_of
from src.methods import MethodContext, apply_method, method_config
from src.models import create_model

METHODS = [
    {"name": "dynamic"},
    {"name": "dynamic", "dtype": "fp16"},
    {"name": "static"},
    {"name": "qat"},
    {"name": "fp16"},
    {"name": "bf16"},
]
STUDENTS = {
    "dyad_brand2": {"hidden_size": 256, "latent_size": 16},
    "cnn": {"widths": [16, 32, 64], "hidden": 256},
}


def compact_methods(name: str) -> list[dict]:
    """Pruning, distillation and chains, with the family's student."""
    student = STUDENTS[name]
    return [
        {"name": "prune", "structured": False, "sparsity": 0.5},
        {"name": "prune", "structured": True, "sparsity": 0.5},
        {"name": "distill", "student": student},
        {
            "name": "prune_dynamic",
            "steps": [{"name": "prune", "structured": True}, {"name": "dynamic"}],
        },
        {
            "name": "distill_dynamic",
            "steps": [{"name": "distill", "student": student}, {"name": "dynamic"}],
        },
    ]


TARGETS = "int8 size <= 0.26x; dynamic >= 2x at bs1 on DyAD; static >= 3x at bsN on the CNN"
COMPACT_TARGETS = (
    "DyAD brand 2: structured prune H/2 <= 0.3x size and >= 2x at bs1; distill (H 256) <= 0.1x; "
    "distill_dynamic <= 0.03x; |delta AUROC| <= 0.02"
)


def _label(values: dict) -> str:
    if "steps" in values or "student" in values:
        return values["name"]
    return "-".join(str(v) for v in values.values())


def _fine_tuner(loader, loss_of):
    """Two QAT steps on real batches: enough to exercise prepare -> train -> convert."""

    def fine_tune(model, epochs, lr, extra_loss=None):
        params = [*model.parameters(), *(extra_loss.parameters() if extra_loss else [])]
        optimizer = torch.optim.AdamW(params, lr=lr or 1e-3)
        model.train()
        for batch in islice(loader, 2):
            loss = loss_of(model, batch)
            if extra_loss is not None:
                loss = loss + extra_loss(batch["x"], model(batch["x"]))["total"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return fine_tune


def arch_rows(name: str, data, loss_of, spec: LatencySpec) -> list[tuple[str, ...]]:
    torch.manual_seed(0)
    base = create_model(name, **_arch_kwargs(name, data)).eval()
    tuner = _fine_tuner(data.calibration_dataloader(), loss_of)
    task = "classification" if name.startswith("cnn") else "anomaly"
    context = MethodContext(data, tuner, task=task)
    rows = []
    for values in METHODS + compact_methods(name):
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


def _arch_kwargs(name: str, data) -> dict:
    if name.startswith("cnn"):
        return {"in_channels": 1, "num_classes": 10, "image_size": 32}
    return {}


def _dyad_loss(model, batch):
    x = batch["x"]
    return (model(x).prediction - model.split_target(x)).pow(2).mean()


def _cnn_loss(model, batch):
    return torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"])


def run_arch(dyad_batch: int) -> None:
    root = ensure_data("small", None, 3)
    dyad = create_model("dyad_brand2")
    battery = BatteryDataModule(root, 3, 0, dyad.config.channels, ROOT / "data" / "cache")
    battery.setup()
    rows = arch_rows(
        "dyad_brand2",
        battery,
        _dyad_loss,
        LatencySpec(batch_sizes=(1, dyad_batch), warmup=1, iters=3, rounds=2, threads=2),
    )
    from omegaconf import OmegaConf

    digits_cfg = OmegaConf.load(ROOT / "conf" / "data" / "digits.yaml")
    digits = DATAMODULES["digits"](digits_cfg)
    digits.setup()
    rows += arch_rows(
        "cnn",
        digits,
        _cnn_loss,
        LatencySpec(batch_sizes=(1, 64), warmup=3, iters=10, rounds=3, threads=2),
    )
    print_table(
        f"architectures: size and speed vs fp32 (DyAD bsN={dyad_batch}, CNN bsN=64)",
        rows,
        ("model", "method", "MB", "size ratio", "speedup bs1", "speedup bsN", "int8 frac"),
    )
    print(f"targets: {TARGETS}")


def run_task() -> None:
    sweep = ",".join(["dynamic", "static", "qat", "fp16", "bf16"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, overrides, primary in (
            ("dyad (default)", [], "auroc"),
            ("cnn (digits)", ["experiment=cnn_digits"], "accuracy"),
        ):
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
            cmd = [
                sys.executable,
                "-m",
                "src.train",
                "-m",
                f"+method={sweep}",
                *overrides,
                f"hydra.sweep.dir={tmp}/sweep",
                "trainer.enable_progress_bar=false",
            ]
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            rows += _task_rows(f"sqlite:///{tmp}/mlflow.db", label, primary)
    print_table(
        "default data: task metric vs fp32, from the logged runs",
        rows,
        ("family", "method", "metric", "delta", "size ratio", "speedup bs1", "speedup bsN"),
    )
    print("target: |delta| <= 0.02")


COMPACT_SETUP = [
    "experiment=dyad_brand2",  # H=1024, L=24, 4 inputs: 12.8 M parameters
    "data.brand=3",  # the default generated data (brand-3 layout carries every channel)
    "optim.lr=0.002",
    "trainer.max_epochs=1",
    "data.latency_batch_size=16",
    "benchmark.warmup=1",
    "benchmark.iters=3",
    "benchmark.rounds=2",
]


def run_compact(store: str | None) -> None:
    """Brand-2 DyAD trained once, then every pruning/distillation variant through the CLI."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{store or tmp + '/mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        for overrides in (
            ["+method=prune", "method.structured=true"],
            ["-m", "+method=prune,distill,distill_dynamic,prune_dynamic"],
        ):
            cmd = [sys.executable, "-m", "src.train", *overrides, *COMPACT_SETUP]
            cmd += [f"hydra.sweep.dir={tmp}/sweep", f"hydra.run.dir={tmp}/run"]
            cmd += ["trainer.enable_progress_bar=false"]
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        rows = _task_rows(uri, "dyad_brand2", "auroc")
    print_table(
        "DyAD brand-2 architecture, default data, 1 epoch: from the logged runs",
        rows,
        ("model", "method", "AUROC", "delta", "size ratio", "speedup bs1", "speedup bsN"),
    )
    print(f"targets: {COMPACT_TARGETS}")


def _task_rows(uri: str, label: str, primary: str) -> list[tuple[str, ...]]:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    rows = []
    for run in client.search_runs(ids, order_by=["attributes.start_time ASC"]):
        m, method = run.data.metrics, run.data.tags["method"]
        if (
            method == "baseline"
            or f"delta/{primary}" not in m
            or label.split()[0] not in run.data.tags["model"]
        ):
            continue
        if run.data.params.get("method.structured") == "True":
            method += " (structured)"
        rows.append(
            (
                label,
                f"{method}",
                f"{m[f'test/{primary}']:.4f}",
                f"{m[f'delta/{primary}']:+.4f}",
                f"{m['size/ratio']:.3f}",
                f"{m['latency/speedup_bs1']:.2f}x",
                f"{m['latency/speedup_bsN']:.2f}x",
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
