"""Rank every compressed variant against its own baseline, from the runs logged in MLflow.

python -m src.leaderboard                                  all finished runs: a board per task
python -m src.leaderboard data=battery model=dyad          filters: tags (data, method, model;
                                                           model=dyad: every dyad_* model)
python -m src.leaderboard data_variant=brand3 +tags.seed=0 any tag
python -m src.leaderboard sweep_id=ID                      one sweep; its parent run gets the files
python -m src.leaderboard data=digits metric=test/f1_macro

1) select the runs (``src.board.load_runs``); 2) rank them (``build_board``); 3) write
leaderboard.{md,csv,html,json} and leaderboard_pareto.png to ``out_dir``, print the table, and
log the files to the sweep's parent run. Every number comes from a logged run.

Light by design: the store is opened once, and nothing here imports torch, Lightning or ONNX
(``tests/test_layering.py`` holds it). ``data``, ``model`` and ``method`` are plain strings
matched against the runs' tags, not the train config's groups (``conf/leaderboard.yaml`` is
composed on its own, see :data:`CONFIG`).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.board import (
    Board,
    BoardMeta,
    PairedTables,
    build_boards,
    collect_meta,
    is_counted,
    load_runs,
    print_table,
    verdict_note,
    write_outputs,
)
from src.board import columns as col
from src.board.render import STEM
from src.board.runs import MODEL_OR_FAMILY
from src.board.variants import board_params
from src.cli import entry
from src.cli.resolvers import register_resolvers
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.tracking.liveness import reap_orphans
from src.tracking.store import RunStore

register_resolvers()  # before Hydra composes: ${project_root:} and ${default_store:}
CONFIG = ROOT / "conf" / "leaderboard.yaml"
# Stored by hand, so that Hydra composes it with conf/'s groups out of sight: there data=battery
# would choose the train config's data/ group (whose nodes need the model registries, torch)
# instead of setting a tag filter.
# The project's folders come from conf/paths/ (their one owner), as ``paths`` in this config.
PATHS = ROOT / "conf" / "paths" / "default.yaml"
NODE = OmegaConf.merge(OmegaConf.load(CONFIG), {"paths": OmegaConf.load(PATHS)})
ConfigStore.instance().store(name="leaderboard", node=NODE)


@entry.guard
def job(cfg: DictConfig) -> dict[str, Path]:
    """Select, rank, write, print. Bad input (empty store, no match, unknown metric) is one
    ``error:`` line and exit code 2, with nothing written. The store is opened once: its
    orphans, runs, paired tables and the parent's files all go through that one handle."""
    store = RunStore.open(cfg.tracking_uri)
    parent_run_id = selected_parent(cfg, store)
    filters = selection(cfg)
    chosen = _describe_filters(filters, cfg, parent_run_id)
    runs = select_runs(cfg, store, filters, parent_run_id, chosen)
    boards = build_boards(
        runs,
        cfg.metric,
        higher_is_better=cfg.higher_is_better,
        split_by=list(cfg.split_by or []),
        dedupe=cfg.dedupe,
        margin=cfg.margin,
        tables=PairedTables(store=store),
        n_boot=int(cfg.n_boot),
    )
    paths: dict[str, Path] = {}
    for board in boards:
        meta = describe(runs, board, cfg, parent_run_id, chosen)
        stem = STEM if len(boards) == 1 else f"{STEM}-{board.per_run[col.TASK].iloc[0]}"
        written = write_outputs(board, cfg.out_dir, meta, stem)
        paths.update({f"{stem}.{kind}": path for kind, path in written.items()})
        print_table(board, meta, runtime=cfg.get("runtime"))
    log_to_parent(cfg, store, parent_run_id, paths)
    print(f"wrote {', '.join(p.name for p in paths.values())} to {Path(cfg.out_dir)}")
    return paths


@hydra.main(version_base="1.3", config_path=None, config_name="leaderboard")
def main(cfg: DictConfig):
    return job(cfg)


def selected_parent(cfg: DictConfig, store: RunStore) -> str | None:
    """The sweep's parent run: ``parent_run_id``, or the run tagged ``sweep_id``."""
    if cfg.parent_run_id:
        return str(cfg.parent_run_id)
    if cfg.sweep_id:
        return store.sweep_parent(str(cfg.sweep_id))
    return None


def select_runs(
    cfg: DictConfig, store: RunStore, filters: dict, parent_run_id: str | None, chosen: str
) -> pd.DataFrame:
    """The selected runs (any status), refusing an empty selection with what to change
    (``chosen``: the selection in words). Runs left RUNNING by a process that is gone are marked
    FAILED first (the one write besides the sweep's files), so an orphan is reported as what it
    is and never counted."""
    for run_id in reap_orphans(store):
        print(f"run {run_id} was left RUNNING by a process that is gone: marked FAILED")
    runs = load_runs(
        experiment=cfg.experiment_name,
        filters=filters,
        parent_run_id=parent_run_id,
        include_baselines=cfg.include_baselines,
        params=board_params(cfg.split_by or []),
        store=store,
    )
    if runs.empty:
        what = f"match {chosen}" if chosen else "at all (the store is empty)"
        raise UserError(
            f"no runs in {cfg.tracking_uri} {what}: train some (python -m src.train) or change "
            "the filters / tracking_uri"
        )
    if not is_counted(runs).any():
        counts = runs[col.STATUS].value_counts().to_dict()
        raise UserError(
            f"none of the training runs matching {chosen or 'all'} is FINISHED ({counts}); "
            "see their error tags in MLflow"
        )
    return runs


def describe(
    runs: pd.DataFrame, board: Board, cfg: DictConfig, parent_run_id: str | None, chosen: str
) -> BoardMeta:
    """Provenance for every output: commit, command, selection (``chosen``, in words), how the
    numbers were measured."""
    return collect_meta(
        runs,
        board.per_run,
        command=entry.command_line("src.leaderboard"),
        tracking_uri=str(cfg.tracking_uri),
        selection=chosen,
        metric=board.metric,
        higher_is_better=board.higher_is_better,
        parent_run_id=parent_run_id,
        verdicts=verdict_note(board),
    )


def log_to_parent(
    cfg: DictConfig, store: RunStore, parent_run_id: str | None, paths: dict[str, Path]
) -> None:
    """Attach the files to the sweep's parent run (artifact folder ``leaderboard/``)."""
    if not (parent_run_id and cfg.log_to_parent):
        return
    for path in paths.values():
        store.log_artifact(parent_run_id, path, "leaderboard")
    print(f"logged to parent run {parent_run_id} (artifacts: leaderboard/)")


def selection(cfg: DictConfig) -> dict[object, object]:
    """Filters of :func:`src.board.runs.load_runs` from the config: ``data``, ``method`` and
    ``model`` are tags (``model`` matches a model or its family: ``model=dyad`` selects every
    dyad_* model), then any ``tags.*`` and ``params.*``."""
    filters: dict[object, object] = {
        schema.DATA: _plain(cfg.data),
        schema.DATA_VARIANT: cfg.data_variant,
        schema.METHOD: _plain(cfg.method),
        MODEL_OR_FAMILY: _plain(cfg.model),
    }
    filters.update(OmegaConf.to_container(cfg.tags, resolve=True) or {})
    params = OmegaConf.to_container(cfg.params, resolve=True) or {}
    filters.update({col.param(k): v for k, v in schema.flatten_params(params).items()})
    return {k: v for k, v in filters.items() if v is not None}


def _plain(value: object) -> object:
    """A filter's value as typed: a string, a list of them (``method=[static,qat]``), or None."""
    if isinstance(value, ListConfig):
        return [str(v) for v in OmegaConf.to_container(value, resolve=True)]
    return None if value is None else str(value)


def _describe_filters(filters: dict, cfg: DictConfig, parent_run_id: str | None) -> str:
    """The selection in the words the user typed (``model=dyad``, ``data_variant=brand3``)."""
    parts = [f"{k[0] if isinstance(k, tuple) else k}={v}" for k, v in filters.items()]
    if cfg.experiment_name:
        parts.insert(0, f"experiment={cfg.experiment_name}")
    if cfg.sweep_id:
        parts.append(f"sweep_id={cfg.sweep_id}")
    if parent_run_id:
        parts.append(f"parent_run_id={parent_run_id}")
    return ", ".join(parts)


if __name__ == "__main__":
    entry.run(main)
