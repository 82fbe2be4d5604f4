"""Rank every compressed variant against its own baseline, from the runs logged in MLflow.

python -m src.leaderboard                                  all finished runs of the store
python -m src.leaderboard data=battery brand=3 model=dyad  filters use src.train's group names
python -m src.leaderboard sweep_id=ID                      one sweep; its parent run gets the files
python -m src.leaderboard data=digits metric=test/f1_macro +tags.seed=0

Writes leaderboard.{md,csv,html,json} and leaderboard_pareto.png to ``out_dir`` and prints the
table. Every number comes from a logged run; see ``src/board/`` for the API behind each step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from src.board import (  # noqa: E402
    BoardMeta,
    aggregate,
    collect_meta,
    find_parent_run,
    open_store,
    prepare_runs,
    print_table,
    resolve_metric,
    write_outputs,
)
from src.board import load_runs as load_store_runs  # noqa: E402
from src.board.aggregate import is_counted  # noqa: E402
from src.errors import UserError  # noqa: E402
from src.tracking.run_info import flatten  # noqa: E402

_FAILURES: list[str] = []


@hydra.main(version_base="1.3", config_path="../conf", config_name="leaderboard")
def main(cfg: DictConfig) -> dict[str, Path] | None:
    """Hydra entry. Bad input (empty store, no match, unknown metric) becomes one ``error:``
    line and exit code 2, with nothing written."""
    try:
        parent_run_id = selected_parent(cfg)
        runs = load_runs(cfg, parent_run_id)
        per_run, board = build_board(runs, cfg)
        meta = describe(runs, per_run, cfg, parent_run_id)
        paths = write_outputs(board, cfg.out_dir, meta)
        print_table(board, meta)
        log_to_parent(cfg, parent_run_id, paths)
    except UserError as err:
        _FAILURES.append(str(err))
        return None
    print(f"wrote {', '.join(p.name for p in paths.values())} to {Path(cfg.out_dir)}")
    return paths


def selected_parent(cfg: DictConfig) -> str | None:
    """The sweep's parent run: ``parent_run_id``, or the run tagged ``sweep_id``."""
    if cfg.parent_run_id:
        return str(cfg.parent_run_id)
    if cfg.sweep_id:
        return find_parent_run(cfg.tracking_uri, str(cfg.sweep_id))
    return None


def load_runs(cfg: DictConfig, parent_run_id: str | None) -> pd.DataFrame:
    """The selected runs (any status), refusing an empty selection with what to change."""
    filters = selection(cfg)
    runs = load_store_runs(
        cfg.tracking_uri,
        experiment=cfg.experiment_name,
        filters=filters,
        parent_run_id=parent_run_id,
        include_baselines=cfg.include_baselines,
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


def build_board(runs: pd.DataFrame, cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run view (labelled, de-duplicated, with ratios) and the ranked board."""
    metric = cfg.metric or _data_metric(cfg)
    split_by = list(cfg.split_by or [])
    per_run = prepare_runs(runs, metric, split_by, cfg.dedupe)
    board = aggregate(per_run, resolve_metric(per_run, metric), cfg.higher_is_better)
    return per_run, board


def describe(
    runs: pd.DataFrame, per_run: pd.DataFrame, cfg: DictConfig, parent_run_id: str | None
) -> BoardMeta:
    """Provenance for every output: commit, command, selection, how the numbers were measured."""
    return collect_meta(
        runs,
        per_run,
        tracking_uri=str(cfg.tracking_uri),
        selection=_describe_filters(selection(cfg), cfg, parent_run_id),
        metric=resolve_metric(per_run, cfg.metric or _data_metric(cfg)),
        higher_is_better=bool(cfg.higher_is_better),
        parent_run_id=parent_run_id,
    )


def log_to_parent(cfg: DictConfig, parent_run_id: str | None, paths: dict[str, Path]) -> None:
    """Attach the files to the sweep's parent run (artifact folder ``leaderboard/``)."""
    if not (parent_run_id and cfg.log_to_parent):
        return
    client = open_store(cfg.tracking_uri)
    for path in paths.values():
        client.log_artifact(parent_run_id, str(path), "leaderboard")
    print(f"logged to parent run {parent_run_id} (artifacts: leaderboard/)")


def selection(cfg: DictConfig) -> dict[str, object]:
    """Filters of :func:`src.board.runs.load_runs` from the config."""
    filters: dict[str, object] = {
        "data": _group_name(cfg, "data"),
        "brand": cfg.brand,
        "model": _group_name(cfg, "model"),
        "method": _group_name(cfg, "method"),
    }
    filters.update(OmegaConf.to_container(cfg.tags, resolve=True) or {})
    params = OmegaConf.to_container(cfg.params, resolve=True) or {}
    filters.update({f"params.{k}": v for k, v in flatten(params).items()})
    return {k: v for k, v in filters.items() if v is not None}


def _group_name(cfg: DictConfig, group: str) -> str | None:
    node = cfg.get(group)
    return None if node is None else str(node.name)


def _data_metric(cfg: DictConfig) -> str | None:
    """With ``data=NAME``: that data config's ``primary_metric``."""
    node = cfg.get("data")
    return None if node is None else node.get("primary_metric")


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
    main()
    if _FAILURES:
        print(f"error: {_FAILURES[-1]}", file=sys.stderr)
        sys.exit(2)
