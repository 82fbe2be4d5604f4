"""A chain's first step taken from a finished run that computed the same thing.

``prune_dynamic`` is ``prune_structured`` followed by dynamic int8; ``distill_dynamic`` and
``distill_qat`` start with ``distill``. In one sweep the first step is then computed twice, bit
for bit the same (same baseline, data, seed and code: the step starts from the state every method
run starts from). :func:`find_step` returns that step's model from the finished run that already
computed it, so the chain goes on from there (the structured prune of the default sweep: 25-30 s
of fine-tuning on 2 cores).

A run is reused only when everything that decides the step's result is equal: the method config
(every key, defaults filled in, whatever the method's name), the run's step key (model, data,
task, optimiser, trainer, seed and student: ``src.cli.specs.step_key``), the baseline run, the
data fingerprint, the code (git commit; uncommitted changes are not seen) and the torch version.
Its model comes from its logged file (weights only); the step's own training curves and tables
stay with the run that computed it, which the chain's run names in a tag
(:data:`src.core.schema.STEP_REUSED`).
"""

from __future__ import annotations

import logging

from torch import nn

from src.core import schema
from src.methods import MethodConfig, method_config
from src.pipeline.artifact import BrokenArtifact, load
from src.tracking.store import FINISHED, RunStore, clause, tag_clause

log = logging.getLogger(__name__)
MATCH = (  # tags a reused run shares with the chain's run; all of them must be set
    schema.STEP_KEY,
    schema.BASELINE_RUN_ID,
    schema.DATA_FINGERPRINT,
    schema.GIT_COMMIT,
    schema.TORCH_VERSION,
)
_IGNORED = ("name", "baseline_run_id")  # a method's name and baseline say nothing of its result


def find_step(store: RunStore, run_id: str, step: MethodConfig) -> tuple[str, nn.Module] | None:
    """``(run id, model)`` of the newest finished run of ``step``'s config that matches run
    ``run_id`` (the chain's own, open) in everything else that decides the result; None if
    there is none."""
    tags = store.get(run_id).data.tags
    if any(not tags.get(key) for key in MATCH):  # e.g. no commit recorded: the code is unknown
        return None
    clauses = [tag_clause(key, tags[key]) for key in MATCH]
    clauses.append(f"attributes.status = '{FINISHED}'")
    clauses.append(clause("params.method.kind", step.KIND))  # before any model is loaded
    for run in store.search(clauses, order_by=["attributes.start_time DESC"]):
        if run.info.run_id != run_id:
            model = _model_if_same(store, run.info.run_id, step)
            if model is not None:
                return run.info.run_id, model
    return None


def _model_if_same(store: RunStore, run_id: str, step: MethodConfig) -> nn.Module | None:
    try:
        loaded = load(run_id, store.uri)
    except BrokenArtifact as err:
        log.warning("not reusing run %s: %s", run_id, err)
        return None
    if settings(method_config(loaded.extras["method"])) != settings(step):
        return None
    return loaded.model


def settings(config: MethodConfig) -> dict:
    """What a method computes by: its config without its name and baseline."""
    return {k: v for k, v in config.to_dict().items() if k not in _IGNORED}
