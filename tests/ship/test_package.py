"""The shipped model's pinned requirements cover what its code imports."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys

import pytest

from src.ship.package import SERVED_PACKAGES, requirements
from tests.conftest import ROOT

IMPORTS = (
    "import sys, json; import src.serve.model, src.serve.variant, "
    "src.runtimes.onnxruntime.session; "
    "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names) -> set[str]:
    """The distributions ``names`` install, their dependencies included (extras aside)."""
    seen, todo = set(), [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            if "extra ==" not in line:
                todo.append(canonical(re.split(r"[ ;<>=!~\[(]", line, maxsplit=1)[0]))
    return seen


@pytest.mark.slow  # a fresh interpreter imports the whole served stack (about 10 s)
def test_every_distribution_the_served_code_imports_is_pinned_or_a_dependency():
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    modules = set(json.loads(out)) - set(sys.stdlib_module_names) - {"src"}
    owners = importlib.metadata.packages_distributions()
    imported = {canonical(d) for m in modules for d in owners.get(m, [])}
    missing = imported - closure(SERVED_PACKAGES)
    assert not missing, f"pin these in SERVED_PACKAGES: {sorted(missing)}"
    assert all(re.fullmatch(r"[\w.-]+==[\w.+]+", r) for r in requirements())
    assert any(r.startswith("torch==2.13.0") for r in requirements())
