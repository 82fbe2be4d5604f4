"""notebooks/leaderboard.ipynb runs headless against a hand-built store, and is kept stripped:
``python -m pytest tests/board/test_notebook.py``."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "leaderboard.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_on_the_store_named_by_the_env_var(demo, monkeypatch):
    store, _ = demo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOK.parent}}
    )
    client.execute()  # raises CellExecutionError on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in outputs)
    assert store.uri in text  # the store came from the env var
    assert "dynamic" in text and "0.84 ± 0.046" in text  # the board's numbers
    assert "no interval" in text and "margin 0.02" in text  # the verdicts and how they were judged
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the three plots
