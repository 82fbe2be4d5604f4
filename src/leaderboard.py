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
composed on its own, see :func:`src.cli.selection.board_config`).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from src.board import (
    Board,
    BoardMeta,
    collect_meta,
    print_table,
    verdict_note,
    write_outputs,
)
from src.board import columns as col
from src.board.render import STEM
from src.cli import entry
from src.cli.resolvers import register_resolvers
from src.cli.selection import board_config, selected_boards
from src.tracking.store import RunStore

register_resolvers()  # before Hydra composes: ${project_root:} and ${default_store:}
# Stored by hand (src.cli.selection.board_config), so that Hydra composes it with conf/'s groups
# out of sight: there data=battery would choose the train config's data/ group instead of
# setting a tag filter.
NODE = board_config()
ConfigStore.instance().store(name="leaderboard", node=NODE)


@entry.guard
def job(cfg: DictConfig) -> dict[str, Path]:
    """Select, rank, write, print. Bad input (empty store, no match, unknown metric) is one
    ``error:`` line and exit code 2, with nothing written. The store is opened once: its
    orphans, runs, paired tables and the parent's files all go through that one handle."""
    store = RunStore.open(cfg.tracking_uri)
    boards, runs, parent_run_id, chosen = selected_boards(cfg, store)
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


if __name__ == "__main__":
    entry.run(main)
