"""Rank every compressed variant against its own baseline, from the runs logged in MLflow.

python -m src.leaderboard                                  all finished runs: a board per task
python -m src.leaderboard data=battery model=dyad          filters use src.train's group names
                                                           (model=dyad: every dyad_* model)
python -m src.leaderboard data_variant=brand3 +tags.seed=0 any tag
python -m src.leaderboard sweep_id=ID                      one sweep; its parent run gets the files
python -m src.leaderboard data=digits metric=test/f1_macro

1) select the runs (``src.board.load_runs``); 2) rank them (``build_board``); 3) write
leaderboard.{md,csv,html,json} and leaderboard_pareto.png to ``out_dir``, print the table, and
log the files to the sweep's parent run. Every number comes from a logged run.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

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
from src.board.render import STEM
from src.board.variants import board_params
from src.cli import entry
from src.core import schema
from src.core.errors import UserError
from src.models import model_family
from src.tracking.liveness import reap_orphans
from src.tracking.store import RunStore


@entry.guard
def job(cfg: DictConfig) -> dict[str, Path]:
    """Select, rank, write, print. Bad input (empty store, no match, unknown metric) is one
    ``error:`` line and exit code 2, with nothing written."""
    parent_run_id = selected_parent(cfg)
    runs = select_runs(cfg, parent_run_id)
    split_by = list(cfg.split_by or [])
    boards = build_boards(
        runs,
        cfg.metric,
        higher_is_better=cfg.higher_is_better,
        split_by=split_by,
        dedupe=cfg.dedupe,
        margin=cfg.margin,
        tables=PairedTables(cfg.tracking_uri),
        n_boot=int(cfg.n_boot),
    )
    paths: dict[str, Path] = {}
    for board in boards:
        meta = describe(runs, board, cfg, parent_run_id)
        stem = STEM if len(boards) == 1 else f"{STEM}-{board.per_run['task'].iloc[0]}"
        written = write_outputs(board, cfg.out_dir, meta, stem)
        paths.update({f"{stem}.{kind}": path for kind, path in written.items()})
        print_table(board, meta, runtime=cfg.get("runtime"))
    log_to_parent(cfg, parent_run_id, paths)
    print(f"wrote {', '.join(p.name for p in paths.values())} to {Path(cfg.out_dir)}")
    return paths


@hydra.main(version_base="1.3", config_path="../conf", config_name="leaderboard")
def main(cfg: DictConfig):
    return job(cfg)


def selected_parent(cfg: DictConfig) -> str | None:
    """The sweep's parent run: ``parent_run_id``, or the run tagged ``sweep_id``."""
    if cfg.parent_run_id:
        return str(cfg.parent_run_id)
    if cfg.sweep_id:
        return RunStore.open(cfg.tracking_uri).sweep_parent(str(cfg.sweep_id))
    return None


def select_runs(cfg: DictConfig, parent_run_id: str | None) -> pd.DataFrame:
    """The selected runs (any status), refusing an empty selection with what to change. Runs
    left RUNNING by a process that is gone are marked FAILED first (the one write besides the
    sweep's files), so an orphan is reported as what it is and never counted."""
    for run_id in reap_orphans(RunStore.open(cfg.tracking_uri)):
        print(f"run {run_id} was left RUNNING by a process that is gone: marked FAILED")
    filters = selection(cfg)
    runs = load_runs(
        cfg.tracking_uri,
        experiment=cfg.experiment_name,
        filters=filters,
        parent_run_id=parent_run_id,
        include_baselines=cfg.include_baselines,
        params=board_params(cfg.split_by or []),
    )
    chosen = _describe_filters(filters, cfg, parent_run_id)
    if runs.empty:
        what = f"match {chosen}" if chosen else "at all (the store is empty)"
        raise UserError(
            f"no runs in {cfg.tracking_uri} {what}: train some (python -m src.train) or change "
            "the filters / tracking_uri"
        )
    if not is_counted(runs).any():
        counts = runs["status"].value_counts().to_dict()
        raise UserError(
            f"none of the training runs matching {chosen or 'all'} is FINISHED ({counts}); "
            "see their error tags in MLflow"
        )
    return runs


def describe(
    runs: pd.DataFrame, board: Board, cfg: DictConfig, parent_run_id: str | None
) -> BoardMeta:
    """Provenance for every output: commit, command, selection, how the numbers were measured."""
    return collect_meta(
        runs,
        board.per_run,
        command=entry.command_line("src.leaderboard"),
        tracking_uri=str(cfg.tracking_uri),
        selection=_describe_filters(selection(cfg), cfg, parent_run_id),
        metric=board.metric,
        higher_is_better=board.higher_is_better,
        parent_run_id=parent_run_id,
        verdicts=verdict_note(board.margin, board.resampled, board.higher_is_better),
    )


def log_to_parent(cfg: DictConfig, parent_run_id: str | None, paths: dict[str, Path]) -> None:
    """Attach the files to the sweep's parent run (artifact folder ``leaderboard/``)."""
    if not (parent_run_id and cfg.log_to_parent):
        return
    store = RunStore.open(cfg.tracking_uri)
    for path in paths.values():
        store.log_artifact(parent_run_id, path, "leaderboard")
    print(f"logged to parent run {parent_run_id} (artifacts: leaderboard/)")


def selection(cfg: DictConfig) -> dict[str, object]:
    """Filters of :func:`src.board.runs.load_runs` from the config."""
    filters: dict[str, object] = {
        schema.DATA: _group_name(cfg, "data"),
        schema.DATA_VARIANT: cfg.data_variant,
        schema.METHOD: _group_name(cfg, "method"),
    }
    model = _group_name(cfg, "model")
    if model is not None:  # a family's name (dyad, cnn) selects the whole family
        key = schema.MODEL_FAMILY if model_family(model) == model else schema.MODEL
        filters[key] = model
    filters.update(OmegaConf.to_container(cfg.tags, resolve=True) or {})
    params = OmegaConf.to_container(cfg.params, resolve=True) or {}
    filters.update({f"params.{k}": v for k, v in schema.flatten_params(params).items()})
    return {k: v for k, v in filters.items() if v is not None}


def _group_name(cfg: DictConfig, group: str) -> str | None:
    node = cfg.get(group)
    return None if node is None else str(node.name)


def _describe_filters(filters: dict, cfg: DictConfig, parent_run_id: str | None) -> str:
    parts = [f"{k}={v}" for k, v in filters.items()]
    if cfg.experiment_name:
        parts.insert(0, f"experiment={cfg.experiment_name}")
    if cfg.sweep_id:
        parts.append(f"sweep_id={cfg.sweep_id}")
    if parent_run_id:
        parts.append(f"parent_run_id={parent_run_id}")
    return ", ".join(parts)


if __name__ == "__main__":
    entry.run(main)
