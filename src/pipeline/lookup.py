"""Which baseline run a job continues or reuses: queries of the store about baselines.

``find_resumable``: a baseline training of this config that stopped with a checkpoint (resume it,
in its own run). ``find_baseline``: the newest finished baseline of this config whose model file
is not known broken (reuse it).
"""

from __future__ import annotations

import logging

from src.core import schema
from src.core.errors import UserError
from src.pipeline.checkpoint import last_checkpoint
from src.pipeline.specs import RunSpec
from src.tracking.store import RunStore, clause

log = logging.getLogger(__name__)


def find_resumable(spec: RunSpec, store: RunStore, fingerprint: str):
    """The newest baseline run of this config and data that stopped (KILLED, FAILED) with a
    checkpoint on this machine, when ``trainer.resume=auto``; else None."""
    if spec.trainer.resume != "auto":
        return None
    key = {"method": schema.BASELINE, "baseline_key": spec.baseline_key}
    clauses = [clause(f"tags.{k}", v) for k, v in key.items()]
    try:
        runs = store.search(clauses, spec.tracking.experiment, ["attributes.start_time DESC"])
    except UserError:  # no experiment yet: nothing to resume
        return None
    for run in runs:
        tags = run.data.tags
        if (run.info.status in ("KILLED", "FAILED")
                and tags.get(schema.DATA_FINGERPRINT) == fingerprint
                and last_checkpoint(tags.get(schema.CHECKPOINTS))):  # fmt: skip
            log.info("resuming run %s from %s", run.info.run_id, tags[schema.CHECKPOINTS])
            return run
    return None


def find_baseline(spec: RunSpec, store: RunStore):
    """The newest finished baseline of this config whose artifact is not known broken."""
    key = dict(method=schema.BASELINE, baseline_key=spec.baseline_key)
    found = store.find(spec.tracking.experiment, unless=schema.ARTIFACT_BROKEN, **key)
    newest = store.find(spec.tracking.experiment, **key)
    if newest is not None and (found is None or newest.info.run_id != found.info.run_id):
        log.warning("skipping baseline run %s: %s", newest.info.run_id,
                    newest.data.tags[schema.ARTIFACT_BROKEN])  # fmt: skip
    return found
