"""Train, compress, evaluate, measure and record one run, from typed specs (no Hydra config).

``run`` is the job's flow; ``specs`` its typed inputs; ``fit`` trains (Lightning, with the logger
that writes into our run); ``deploy`` puts a variant into every runtime and checks parity;
``record`` writes the run (tags, config, results) and reads an earlier one back; ``artifact`` is
the model file (weights only, rebuilt through the method); ``lookup`` finds baselines and
resumable runs; ``checkpoint`` saves and resumes training; ``sensitivity`` is the per-layer
analysis of ``python -m src.sensitivity``.

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
