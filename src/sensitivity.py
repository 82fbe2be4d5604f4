"""Per-layer sensitivity of a baseline: which layers make compression hard.

python -m src.sensitivity                                  the default config's baseline
python -m src.sensitivity sensitivity.treatments=[dynamic] sensitivity.subsample=null
python -m src.sensitivity experiment=dyad_brand1 data.root=DIR data.fold=0

1) the composed config becomes typed specs (the train config's, and ``sensitivity``'s); 2) every
layer of the baseline (found by config, or trained first) is quantized or pruned alone and scored
on the tuning split (``src.pipeline.sensitivity``); 3) the most sensitive layers are printed.
"""

from __future__ import annotations

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from src.cli import entry
from src.cli.hydra_setup import register_configs
from src.cli.specs import run_spec
from src.pipeline.sensitivity import SensitivitySpec, run_sensitivity

register_configs()  # before Hydra composes: the registries' defaults as configs

SHOWN = 10  # rows of the printed summary


def analyse(cfg: DictConfig) -> tuple[str, pd.DataFrame]:
    """One analysis in process: what ``main`` runs, and what tests call."""
    settings = OmegaConf.to_container(cfg.sensitivity, resolve=True)
    return run_sensitivity(run_spec(cfg), SensitivitySpec(**settings))


@entry.guard
def job(cfg: DictConfig) -> str:
    run_id, table = analyse(cfg)
    print_summary(table)
    print(f"MLflow run {run_id} (tables/sensitivity.csv, plots/sensitivity.png)")
    return run_id


@hydra.main(version_base="1.3", config_path="../conf", config_name="sensitivity")
def main(cfg: DictConfig) -> str:
    return job(cfg)


def print_summary(table: pd.DataFrame) -> None:
    """The layers whose treatment alone raises the tuning loss most."""
    out = Table(title=f"most sensitive layers (of {table.layer.nunique()}; tuning split)")
    for column in ("layer", "kind", "treatment", "loss rise", "speedup bs1"):
        out.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for _, row in table.nlargest(SHOWN, "loss_rise").iterrows():
        speed = row.get("speedup_bs1")
        speed = "" if speed is None or pd.isna(speed) else f"{speed:.2f}x"
        out.add_row(row.layer, row.kind, row.treatment, f"{row.loss_rise:+.2%}", speed)
    Console().print(out)


if __name__ == "__main__":
    entry.run(main)
