"""The benchmarks' results files: ``pytest tests/benchmarks/test_common.py``."""

import csv

import pytest

from benchmarks.common import RESULTS, RESULTS_ENV, machine, results_name, write_csv

HEADER = ("variant x runtime", "p50 ms bs1", "vs fp32 eager bs1")
ROWS = [("fp32 onnxruntime", "1.20", "0.95x [0.90, 1.01]"), ("dynamic eager", "0.40", "3.00x")]


def _read(path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_table_becomes_one_flat_file_named_by_its_setup(tmp_path):
    path = write_csv("runtimes", ["all", "t2"], ROWS, HEADER, folder=tmp_path)
    assert path == tmp_path / "runtimes-all-t2.csv"
    lines = _read(path)
    columns = ["variant_x_runtime", "p50_ms_bs1", "vs_fp32_eager_bs1", "torch", "threads", "cpu"]
    assert list(lines[0]) == columns
    assert [tuple(line.values())[:3] for line in lines] == ROWS  # the printed cells, as printed
    assert all({k: line[k] for k in machine()} == machine() for line in lines)


def test_the_same_setup_replaces_its_file(tmp_path):
    write_csv("runtimes", ["all", "t2"], ROWS, HEADER, folder=tmp_path)
    path = write_csv("runtimes", ["all", "t2"], ROWS[:1], HEADER, folder=tmp_path)
    assert len(_read(path)) == 1 and len(list(tmp_path.iterdir())) == 1


def test_the_folder_is_the_environments_else_benchmarks_results(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "smoke"))
    assert write_csv("search", ["grid13", "trials13"], ROWS, HEADER).parent == tmp_path / "smoke"
    assert RESULTS.name == "results" and RESULTS.parent.name == "benchmarks"


def test_setup_tokens_become_a_safe_file_name():
    assert results_name("board_memory", ["runs100,1000", "tiny"]) == (
        "board_memory-runs100_1000-tiny.csv"
    )
    assert (
        results_name("data_loading", ["Small", "", "brand 3"]) == "data_loading-small-brand_3.csv"
    )
    assert results_name("compression", ["task"]) == "compression-task.csv"


def test_a_row_of_another_width_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="rows of 2 cells under 3 columns"):
        write_csv("runtimes", ["all"], [("a", "b")], HEADER, folder=tmp_path)
    assert not list(tmp_path.iterdir())
