"""Train a baseline or compress it, evaluate with the task's protocol, record all in MLflow.

python -m src.train                                   # DyAD baseline on generated data
python -m src.train +method=qat                       # a compressed variant of that baseline
python -m src.train -m +method=dynamic,static,qat     # a sweep, one run per method
python -m src.train experiment=dyad_brand3 data.root=DIR data.fold=0

1) the composed config becomes typed specs (``src.cli.specs``); 2) the pipeline trains or
compresses, evaluates, measures and records (``src.pipeline``); 3) the results are printed.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from src.cli import entry
from src.cli.hydra_setup import register_configs
from src.cli.specs import run_spec
from src.core import schema
from src.pipeline import Outcome, run

register_configs()  # before Hydra composes: the registries' defaults as configs


def train(cfg: DictConfig) -> Outcome:
    """One job in process: what ``main`` runs, and what tests and ``src.reproduce`` call."""
    return run(run_spec(cfg))


@entry.guard
def job(cfg: DictConfig) -> float:
    """Train (or compress), print the results; the primary metric is the sweeper's objective."""
    outcome = train(cfg)
    print_summary(outcome)
    return outcome.result.metrics[outcome.primary_metric]


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return job(cfg)


def print_summary(outcome: Outcome) -> None:
    metrics = outcome.result.metrics
    table = Table(title="results", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(k for k in metrics if k.startswith(schema.SUMMARY_AREAS)):
        table.add_row(key, f"{metrics[key]:.4g}")
    Console().print(table)
    print(f"MLflow run {outcome.run_id}")


if __name__ == "__main__":
    entry.run(main)
