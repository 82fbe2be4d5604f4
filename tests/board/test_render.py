"""Written files and their provenance: ``python -m pytest tests/board/test_render.py``."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from src.board import collect_meta, leaderboard, load_runs, prepare_runs, write_outputs
from src.board.meta import command_line
from src.board.render import display_table, print_table

ROOT_COMMIT = subprocess.run(
    ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
).stdout.strip()


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory):
    store, _ = demo
    runs = load_runs(store.uri, filters={"data": "battery"})
    board = leaderboard(runs)
    argv = sys.argv
    sys.argv = ["/repo/src/leaderboard.py", "data=battery", "out_dir=/tmp/x y"]
    try:
        meta = collect_meta(
            runs, prepare_runs(runs), tracking_uri=store.uri, selection={"data": "battery"},
            metric="test/auroc",
        )  # fmt: skip
    finally:
        sys.argv = argv
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
    assert json.loads(paths["json"].read_text())["runs"] == {
        "used": 12,
        "superseded (older re-runs)": 0,
        "failed": 2,
    }


def test_csv_round_trips_the_board(written):
    board, _, paths = written
    back = pd.read_csv(paths["csv"], comment="#", keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(board.columns)
    for column in ("test/auroc:mean", "test/auroc:std", "vs_baseline/size_ratio:mean"):
        assert back[column].tolist() == pytest.approx(board[column].tolist())
    assert back["variant"].tolist() == board["variant"].tolist()


def test_markdown_and_terminal_tables(written, capsys):
    board, meta, paths = written
    md = paths["md"].read_text()
    assert "| 1 | battery | 3 | dyad | baseline | 3 | 0.85 ± 0.05 |" in md
    assert "![Pareto front](leaderboard_pareto.png)" in md
    table = display_table(board, "test/auroc")
    assert table.loc[table["variant"] == "fp16", "pareto"].item() == ""
    assert table.loc[table["variant"] == "static", "pareto"].item() == "✓"
    print_table(board, meta)
    out = capsys.readouterr().out
    assert (
        "leaderboard: data battery, brand 3: test/auroc (higher is better)" in out
        and meta.commit in out
    )


def test_command_line_outside_the_module():
    assert command_line(["x.py", "a b"]) == "x.py 'a b'"
