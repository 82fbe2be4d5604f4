"""Training throughput of the LightningModule vs a plain PyTorch loop, same model, data and loss.

    python -m benchmarks.train_throughput [--model dyad] [--batches 30] [--repeats 3]

The two are run alternately (A B A B ...) in one process so machine noise hits both alike; the
ratio of their medians is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch

from benchmarks.common import ensure_data, print_table, write_csv
from src.data.battery import BatteryDataModule
from src.models import create_model
from src.tasks import OptimSpec
from src.tasks.anomaly import AnomalyModule, DyadLoss


def lightning_run(model, data, batches: int) -> float:
    module = AnomalyModule(model, DyadLoss(), OptimSpec(lr=1e-3, weight_decay=1e-6), max_epochs=1)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    started = time.perf_counter()
    trainer.fit(module, train_dataloaders=data.train_dataloader())
    return time.perf_counter() - started


def plain_run(model, data, batches: int) -> float:
    module = AnomalyModule(model, DyadLoss(), OptimSpec(lr=1e-3, weight_decay=1e-6), max_epochs=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    model.train()
    started = time.perf_counter()
    for step, batch in enumerate(data.train_dataloader(), start=1):
        loss = module.loss_parts(batch, step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == batches:
            break
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dyad")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = ensure_data(args.preset, None, 3)
    model = create_model(args.model)
    data = BatteryDataModule(root, 3, 0, model.config.channels, root.parent.parent / "cache")
    data.setup()
    snippets = args.batches * data.batch_size
    times = {"lightning": [], "plain": []}
    for _ in range(args.repeats):
        times["lightning"].append(lightning_run(create_model(args.model), data, args.batches))
        times["plain"].append(plain_run(create_model(args.model), data, args.batches))
    rate = {k: snippets / statistics.median(v) for k, v in times.items()}
    rows = [(k, f"{rate[k]:,.0f} snippets/s", " ".join(f"{t:.2f}" for t in times[k])) for k in rate]
    rows.append(("ratio lightning / plain", f"{rate['lightning'] / rate['plain']:.3f}x", ""))
    header = ("loop", "median throughput", "seconds per repeat")
    print_table(
        f"training throughput, {args.model}, {args.batches} batches of {data.batch_size}",
        rows,
        header,
    )
    setup = [args.model, args.preset, f"batches{args.batches}", f"repeats{args.repeats}"]
    write_csv("train_throughput", setup, rows, header)


if __name__ == "__main__":
    main()
