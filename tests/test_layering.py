"""The import graph points down, and each outside API has one home:
``python -m pytest tests/test_layering.py``.

Read from the source (``ast``), not by importing: a rule broken by a new import fails here with
the file and the import that broke it. One rule is checked by importing, in a fresh interpreter:
what the light rooms reach (every import, transitively) loads no torch, Lightning or ONNX.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from src.core.paths import ROOT

SRC = ROOT / "src"
# Packages (and entry modules) of src from the ground floor up; an import may only point to its
# own package or to a lower floor (siblings on one floor never import each other).
FLOORS = [
    {"core"},
    {"quant", "stats"},
    {"models", "data"},
    {"measure", "tasks", "methods", "runtimes"},
    {"tracking"},
    {"pipeline", "board"},  # reports never train: the board reads the store only
    {"cli", "serve"},  # serve: a shipped variant answering (no Hydra config, no src.train)
    {"search"},  # the search package: loop, scoring, report, its app (python -m src.search)
    {"train", "leaderboard", "reproduce", "sensitivity", "timing", "ship"},
]
# Who reads the Hydra config: the entry points and cli/ (serve/ loads a model without it).
CONFIG_READERS = {"cli", "train", "leaderboard", "reproduce", "sensitivity", "search", "timing",
                  "ship"}  # fmt: skip
# Who alone may import an outside API.
ONLY = {
    "torch.ao": {"quant"},
    "torchao": {"quant"},  # PT2E, the maintained int8 path: beside the deprecated one
    "omegaconf": CONFIG_READERS,
    "hydra": CONFIG_READERS,
    "optuna": {"search"},  # the search loop drives it (src/search/loop.py)
    "subprocess": {"core"},  # git, in src/core/paths.py
}
# Methods know no concrete architecture: they ask the model (surgery, quant regions).
FORBIDDEN = {"methods": {"src.models.dyad", "src.models.cnn"}}
# Runtime libraries, each imported only by its runtime's files (paths under src/): choosing
# runtimes must not load them, and a new runtime brings its own.
RUNTIME_LIBRARIES = {
    "onnxruntime": "runtimes/onnxruntime/",
    "onnx": "runtimes/onnxruntime/",
    "onnxscript": "runtimes/onnxruntime/",
    "onnx_ir": "runtimes/onnxruntime/",
    "torch._inductor": "runtimes/compile",
}
# Light rooms: the store client and the reports (a leaderboard reads runs, it never builds a
# model), so they start in a second and hold no framework: none imports these, even indirectly.
HEAVY = ("torch", "pytorch_lightning", "lightning", "onnx", "onnxruntime")
LIGHT = {"tracking", "board", "leaderboard"}


def _floor(unit: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if unit in floor)


def _unit(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


SOURCES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_outside_apis_have_one_home(path):
    unit = _unit(path)
    assert any(unit in floor for floor in FLOORS), f"{unit} is on no floor: add it to FLOORS"
    for name in _imports(path):
        if name.startswith("src."):
            other = name.split(".")[1]
            if other == unit:
                continue
            assert _floor(other) < _floor(unit), (
                f"{path.relative_to(ROOT)} imports {name}: {other} is not below {unit}"
            )
            assert name not in FORBIDDEN.get(unit, set()), f"{path.relative_to(ROOT)}: {name}"
        for api, owners in ONLY.items():
            if name == api or name.startswith(api + "."):
                assert unit in owners, f"{path.relative_to(ROOT)} imports {name}; only {owners}"
        if unit in LIGHT:
            heavy = name.split(".")[0] in HEAVY
            assert not heavy, f"{path.relative_to(ROOT)} imports {name}: {unit} stays light"


def _modules(unit: str) -> list[str]:
    """Every module of ``unit`` (a package's files, or the one entry module), dotted."""
    if not (SRC / unit).is_dir():
        return [f"src.{unit}"]
    paths = sorted((SRC / unit).rglob("*.py"))
    return [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in paths
    ]


@pytest.mark.parametrize("unit", sorted(LIGHT))
def test_light_rooms_load_no_framework_even_indirectly(unit):
    """A fresh interpreter imports every module of ``unit``; none of :data:`HEAVY` may be
    loaded then (an import side effect or a heavy module reached through a light one)."""
    code = (
        "import importlib, sys\n"
        f"for name in {_modules(unit)!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = sorted({m.split(".")[0] for m in proc.stdout.split()})
    assert not loaded, f"importing src.{unit} loads {loaded}"


def test_runtime_libraries_stay_in_their_runtimes_files():
    wrong = [
        f"src/{where} imports {name}; only src/{home}* may"
        for path in SOURCES
        for where in [path.relative_to(SRC).as_posix()]
        for name in _imports(path)
        for library, home in RUNTIME_LIBRARIES.items()
        if (name == library or name.startswith(library + ".")) and not where.startswith(home)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_board_never_reads_conf():
    """Reports learn what a metric means from the runs' tags, never from the config tree."""
    for path in (SRC / "board").rglob("*.py"):
        assert '"conf"' not in path.read_text(), path
