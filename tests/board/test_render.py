"""Written files and their provenance: ``python -m pytest tests/board/test_render.py``."""

import json
import subprocess

import pandas as pd
import pytest

from src.board import build_board, collect_meta, load_runs, write_outputs
from src.board.render import display_table, print_table
from src.cli.entry import command_line

ROOT_COMMIT = subprocess.run(
    ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
).stdout.strip()


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory):
    store, _ = demo
    runs = load_runs(store.uri, filters={"data": "battery"})
    board = build_board(runs)
    meta = collect_meta(
        runs,
        board.per_run,
        tracking_uri=store.uri,
        selection={"data": "battery"},
        metric=board.metric,
        higher_is_better=board.higher_is_better,
        command=command_line("src.leaderboard", ["data=battery", "out_dir=/tmp/x y"]),
    )
    return board, meta, write_outputs(board, tmp_path_factory.mktemp("out") / "lb", meta)


def test_every_file_is_written_with_commit_and_command(written):
    _, meta, paths = written
    assert set(paths) == {"md", "csv", "html", "json", "png"}
    assert meta.command == "python -m src.leaderboard data=battery 'out_dir=/tmp/x y'"
    assert meta.commit.startswith(ROOT_COMMIT or "unknown")
    for kind in ("md", "csv", "html", "json"):
        text = paths[kind].read_text()
        assert meta.commit in text, kind
        assert "src.leaderboard data=battery" in text, kind
        assert "cpu_model=Fake CPU @ 1.0GHz" in text, kind  # how latency was measured
        assert "mean ± sample std" in text or "mean \\u00b1 sample std" in text, kind
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["runs"] == {"used": 12, "superseded (older re-runs)": 0, "failed": 2}
    rows = {(r["model"], r["variant"]): r for r in sidecar["rows"]}
    assert rows[("dyad", "static")]["verdict"] == "no interval"  # the verdicts travel too
    assert rows[("dyad", "baseline")]["test/auroc:mean"] == pytest.approx(0.85)


def test_csv_round_trips_the_board(written):
    board, _, paths = written
    back = pd.read_csv(paths["csv"], comment="#", keep_default_na=False, na_values=[""])
    rows = board.rows
    assert list(back.columns) == list(rows.columns)
    for column in ("test/auroc:mean", "test/auroc:std", "vs_baseline/size_ratio:mean"):
        assert back[column].tolist() == pytest.approx(rows[column].tolist())
    assert back["variant"].tolist() == rows["variant"].tolist()


def test_markdown_and_terminal_tables(written, capsys):
    board, meta, paths = written
    md = paths["md"].read_text()
    # the verdict, then the verdict once Holm-adjusted for the k variants on this baseline
    assert (
        "| 1 | battery (brand3) | dyad | baseline | 3 | baseline | baseline | 0.85 ± 0.05 |" in md
    )
    assert "![Pareto front](leaderboard_pareto.png)" in md
    table = display_table(board.rows, board.metric, board.headline)
    assert "test/recall" in table and "test/f1" not in table  # headline, and only if logged
    # The demo's runs kept no paired tables: no verdicts, so no variant joins the baseline's
    # front (the front is taken among the baseline and non-inferior variants only).
    assert set(table.loc[table["variant"] != "baseline", "verdict"]) == {"no interval"}
    assert table.loc[table["variant"] == "baseline", "pareto"].item() == "✓"
    assert table.loc[table["variant"] == "static", "pareto"].item() == ""
    print_table(board, meta)
    out = capsys.readouterr().out
    assert (
        "leaderboard: data battery (brand3), model dyad: test/auroc (higher is better)" in out
        and meta.commit in out
    )
    assert "static    no interval, 2.4x at bs1 (no interval), 0.25x size" in out  # why, per row


def test_command_line_is_quoted_as_typed():
    assert command_line("src.leaderboard", ["a b", "c"]) == "python -m src.leaderboard 'a b' c"
