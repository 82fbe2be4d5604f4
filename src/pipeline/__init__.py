"""Train, compress, evaluate, measure and record one run, from typed specs (no Hydra config).

``run`` (module ``flow``) is the job's flow; ``specs`` its typed inputs; ``fit`` trains
(Lightning, with the logger that writes into our run); ``deploy`` puts a variant into every
runtime and checks parity;
``record`` writes the run (tags, config, results) and reads an earlier one back; ``artifact`` is
the model file (weights only, rebuilt through the method); ``lookup`` finds baselines and
resumable runs; ``checkpoint`` saves and resumes training; ``sensitivity`` is the per-layer
analysis of ``python -m src.sensitivity``.

Example:
    >>> from src.pipeline import run
    >>> outcome = run(spec)  # spec: a RunSpec, e.g. from src.cli.specs.run_spec(cfg)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.pipeline.flow import Outcome, run
    from src.pipeline.specs import ConfigRecord, ModelSpec, RunSpec, TrackingSpec, TrainerSpec

# Loaded on first use (PEP 562): the flow pulls in Lightning (about 4 s of imports), which a
# timing pass's fresh processes, importing only ``src.pipeline.timing``, never need.
_EXPORTS = {
    "ConfigRecord": "specs",
    "ModelSpec": "specs",
    "Outcome": "flow",
    "RunSpec": "specs",
    "TrackingSpec": "specs",
    "TrainerSpec": "specs",
    "run": "flow",
}
__all__ = [
    "ConfigRecord",
    "ModelSpec",
    "Outcome",
    "RunSpec",
    "TrackingSpec",
    "TrainerSpec",
    "run",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
