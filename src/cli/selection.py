"""Which runs a command over the store works on: the leaderboard's selection, shared by every
entry point that reads runs (``src.leaderboard``, ``src.timing``), so ``sweep_id=``,
``data=``, ``model=``, ``method=``, ``+tags.*`` and ``+params.*`` mean one thing everywhere."""

from __future__ import annotations

import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.board import Board, PairedTables, build_boards, is_counted, load_runs
from src.board import columns as col
from src.board.runs import MODEL_OR_FAMILY
from src.board.variants import board_params
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.tracking.liveness import reap_orphans
from src.tracking.store import RunStore


def board_config() -> DictConfig:
    """``conf/leaderboard.yaml`` with the project's folders (``conf/paths/``, their one owner)
    as ``paths``: the config of every command that builds a board (leaderboard, ship), stored
    by hand so that Hydra composes it without conf/'s groups (there ``data=battery`` would
    choose the train config's data group, whose nodes need torch, instead of a tag filter)."""
    board = OmegaConf.load(ROOT / "conf" / "leaderboard.yaml")
    return OmegaConf.merge(
        board, {"paths": OmegaConf.load(ROOT / "conf" / "paths" / "default.yaml")}
    )


def selected_boards(
    cfg: DictConfig, store: RunStore
) -> tuple[list[Board], pd.DataFrame, str | None, str]:
    """The boards of the selection, as the leaderboard ranks them: ``(boards, runs, parent run
    id, the selection in words)``. Refuses an empty selection (see :func:`select_runs`)."""
    parent_run_id = selected_parent(cfg, store)
    filters = selection(cfg)
    chosen = describe_filters(filters, cfg, parent_run_id)
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
    return boards, runs, parent_run_id, chosen


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
        params=board_params(cfg.get("split_by") or []),
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


def selection(cfg: DictConfig) -> dict[object, object]:
    """Filters of :func:`src.board.runs.load_runs` from the config: ``data``, ``method`` and
    ``model`` are tags (``model`` matches a model or its family: ``model=dyad`` selects every
    dyad_* model), then any ``tags.*`` and ``params.*``."""
    filters: dict[object, object] = {
        schema.DATA: plain(cfg.data),
        schema.DATA_VARIANT: cfg.data_variant,
        schema.METHOD: plain(cfg.method),
        MODEL_OR_FAMILY: plain(cfg.model),
    }
    filters.update(OmegaConf.to_container(cfg.tags, resolve=True) or {})
    params = OmegaConf.to_container(cfg.params, resolve=True) or {}
    filters.update({col.param(k): v for k, v in schema.flatten_params(params).items()})
    return {k: v for k, v in filters.items() if v is not None}


def plain(value: object) -> object:
    """A filter's value as typed: a string, a list of them (``method=[static,qat]``), or None."""
    if isinstance(value, ListConfig):
        return [str(v) for v in OmegaConf.to_container(value, resolve=True)]
    return None if value is None else str(value)


def describe_filters(filters: dict, cfg: DictConfig, parent_run_id: str | None) -> str:
    """The selection in the words the user typed (``model=dyad``, ``data_variant=brand3``)."""
    parts = [f"{k[0] if isinstance(k, tuple) else k}={v}" for k, v in filters.items()]
    if cfg.experiment_name:
        parts.insert(0, f"experiment={cfg.experiment_name}")
    if cfg.sweep_id:
        parts.append(f"sweep_id={cfg.sweep_id}")
    if parent_run_id:
        parts.append(f"parent_run_id={parent_run_id}")
    return ", ".join(parts)
