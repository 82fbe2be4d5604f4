"""Train, compress, evaluate, measure and record one run, from typed specs (no Hydra config).

Example:
    >>> from src.pipeline import run
    >>> outcome = run(spec)  # spec: a RunSpec, e.g. from src.cli.specs.run_spec(cfg)
"""

from src.pipeline.run import Outcome, run
from src.pipeline.specs import ConfigRecord, ModelSpec, RunSpec, TrackingSpec, TrainerSpec

__all__ = [
    "ConfigRecord",
    "ModelSpec",
    "Outcome",
    "RunSpec",
    "TrackingSpec",
    "TrainerSpec",
    "run",
]
