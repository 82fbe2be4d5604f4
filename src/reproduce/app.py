"""Rebuild a published table from logged runs (``python -m src.reproduce``,
:mod:`src.reproduce.__main__`), training only the runs that are missing.

1) the spec ``experiments/<table>.yaml`` names blocks (train overrides, methods, folds); 2) for
each block and fold the train config is composed exactly as ``python -m src.train`` would, and its
``baseline_key`` finds the newest FINISHED run of each method in the store; 3) missing runs are
trained in this process (baseline first); 4) the table is laid out (:mod:`src.reproduce.tables`),
printed beside the published numbers and written to ``out_dir`` with its CSV and the ids of the
runs every cell came from. Every ``src.train`` key given here (``data.root=DIR``) applies to
every run the table needs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.board import columns as col
from src.board.meta import latency_setup
from src.board.runs import runs_to_frame
from src.cli import entry
from src.cli.hydra_setup import register_configs
from src.cli.jobs import composed, train_methods
from src.cli.specs import baseline_key, resolved
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT, git_commit
from src.reproduce.tables import LAYOUTS, markdown, quant_summary_text
from src.tracking.store import RunStore

register_configs()  # before Hydra composes: the registries' defaults as configs

TABLES = ROOT / "experiments"
OWN_KEYS = ("table", "run", "out_dir", "spec")  # the rest of the command line goes to training


@entry.guard
def job(cfg: DictConfig) -> list[Path]:
    """Collect (or train) every block's runs, render the table, write it."""
    spec = load_spec(str(cfg.table), OmegaConf.to_container(cfg.spec, resolve=True))
    store = RunStore(cfg.logger.tracking_uri, create=bool(cfg.run))
    overrides = train_overrides()
    blocks = {
        block.name: collect_block(store, block, overrides, bool(cfg.run), Path(cfg.out_dir))
        for block in spec.blocks
    }
    table = LAYOUTS[spec.layout](spec, blocks)
    text = render(spec, table)
    provenance = provenance_lines(entry.command_line("src.reproduce"), store.uri, blocks)
    paths = write_outputs(Path(cfg.out_dir), str(cfg.table), spec, table, text, provenance, blocks)
    print("\n".join([spec.title, *provenance, "", text, ""]))
    print("written:", ", ".join(str(p) for p in paths))
    return paths


def load_spec(name: str, changes: dict | None = None) -> DictConfig:
    """The table spec ``experiments/<name>.yaml``, with ``changes`` (``+spec.KEY=VALUE``)
    merged over its own keys."""
    path = TABLES / f"{name}.yaml"
    if not path.is_file():
        tables = sorted(p.stem for p in TABLES.glob("*.yaml"))
        raise UserError(f"no table {name!r}; choose table=one of {tables}")
    return OmegaConf.merge(OmegaConf.load(path), changes or {})


def train_overrides() -> list[str]:
    """The command line's overrides meant for training (every key but this app's own)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] not in OWN_KEYS]


def flat_overrides(values) -> list[str]:
    """Block overrides may nest lists (``[experiment=x, ${extra}]``): flatten, drop empties."""
    if isinstance(values, ListConfig):
        values = OmegaConf.to_container(values, resolve=True)
    out = []
    for value in values or []:
        out += flat_overrides(value) if isinstance(value, list | tuple) else [str(value)]
    return [v for v in out if v]


def fold_overrides(block, extra: list[str], fold) -> list[str]:
    """Train overrides of one block and fold: the block's, then the command line's."""
    return flat_overrides(block.overrides) + extra + ([] if fold is None else [f"data.fold={fold}"])


def compose_key(overrides: list[str], runs_dir: Path) -> str:
    """``baseline_key`` of the train config these overrides compose (its jobs writing to
    ``runs_dir``, as :func:`train_methods` would)."""
    return baseline_key(resolved(composed(overrides, runs_dir)))


def collect_block(store: RunStore, block, extra: list[str], train: bool, out: Path):
    """One row per (method, fold) of ``block``: the run's tags and metrics."""
    rows, runs_dir = [], out / "runs"  # Lightning's folders of the runs trained here
    for fold in block.folds:
        overrides = fold_overrides(block, extra, fold)
        key = compose_key(overrides, runs_dir)
        found = store.newest_by_method(key, block.methods)
        missing = [m for m in block.methods if m not in found]
        if missing and train:
            train_methods(overrides, missing, runs_dir)
            found = store.newest_by_method(key, block.methods)
            missing = [m for m in block.methods if m not in found]
        if missing:
            why = "training them failed (see their FAILED runs in MLflow)"
            raise UserError(
                f"no FINISHED {missing} run(s) for block {block.name!r} with overrides "
                f"{overrides} in {store.uri}: " + (why if train else "drop run=false to train them")
            )
        rows.append(runs_to_frame([[found[m] for m in block.methods]], store))
    return pd.concat(rows, ignore_index=True)


def render(spec, table: pd.DataFrame) -> str:
    if spec.layout == "quant_summary":
        return quant_summary_text(spec, table)
    notes = [f"- {line}" for line in spec.get("published_notes") or []]
    return "\n".join([markdown(table), *([""] + notes if notes else [])])


def provenance_lines(command: str, uri: str, blocks: dict[str, pd.DataFrame]) -> list[str]:
    runs = pd.concat(blocks.values(), ignore_index=True)
    return [
        f"commit: {git_commit()}",
        f"command: {command}",
        f"store: {uri} ({len(runs)} runs; ids in the _runs.csv)",
        "measured: every cell from a logged run; ± is the sample std over folds; a method's "
        "milliseconds are the FP32 run's own time divided by the speedup measured side by side "
        "in the method's run; latency setup " + latency_setup(runs),
    ]


def write_outputs(out: Path, name: str, spec, table, text, provenance, blocks) -> list[Path]:
    """``<table>.md`` (provenance + table), ``<table>.csv`` and ``<table>_runs.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    fence = "```" if spec.layout == "quant_summary" else ""
    page = [f"# {spec.title}", "", *[f"- {p}" for p in provenance], "", fence, text, fence]
    runs = pd.concat(
        [frame.assign(block=block) for block, frame in blocks.items()], ignore_index=True
    )
    columns = ["block", col.tag(schema.METHOD), col.tag(schema.FOLD), col.RUN_ID, col.STATUS]
    paths = [out / f"{name}.md", out / f"{name}.csv", out / f"{name}_runs.csv"]
    paths[0].write_text("\n".join(page).replace("\n\n\n", "\n\n") + "\n")
    paths[1].write_text("".join(f"# {p}\n" for p in provenance) + table.to_csv(index=False))
    runs[[c for c in columns if c in runs]].to_csv(paths[2], index=False)
    return paths
