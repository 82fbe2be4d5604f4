"""What a registered version says about itself: tags a query can filter on, and the same facts
as a description a reader sees on the version's page, led by the board's reason line."""

from __future__ import annotations

import shlex
import tempfile

import numpy as np
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf

from src.board import Board
from src.board import columns as col
from src.core import schema
from src.ship.choice import Choice
from src.tracking.store import RunStore


def _text(value) -> str:
    """A tag value: numbers to 4 significant digits, missing as ``-``."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def version_tags(
    board: Board, choice: Choice, run, parent_run_id: str | None, command: str
) -> dict[str, str]:
    """Every fact of the shipped variant as a tag (``verdict``, ``verdict.interval``,
    ``verdict.alpha``, ``speedup_bs1``, ``data_fingerprint``, ``source_run_id`` ...)."""
    row, rt, tags = choice.row, choice.runtime, run.data.tags
    est, low, high = (row.get(k, np.nan) for k in col.DELTA_INTERVAL)
    speed = schema.timing_metric(choice.runtime_name, "speedup_bs1")
    metrics = run.data.metrics
    facts = {
        "variant": choice.variant,
        "chosen_by": choice.chosen_by,
        "runtime": choice.runtime_name,
        "runtime.form": rt.get(col.FORM),
        "verdict": row.get(col.VERDICT),
        "verdict.holm": row.get(col.VERDICT_HOLM),
        "verdict.metric": board.metric,
        "verdict.estimate": est,
        "verdict.interval": "-" if not np.isfinite(low) else f"[{low:+.4f}, {high:+.4f}]",
        "verdict.interval_method": row.get(col.INTERVAL) or "-",
        "verdict.alpha": board.judgement.alpha,
        "verdict.k": row.get(col.FAMILY_K),
        "verdict.margin": board.margin,
        "verdict.units": row.get(col.N_UNITS),
        "fidelity": row.get(col.FIDELITY) or "-",
        "reason": row.get(col.REASON),
        "speedup_bs1": rt.get(col.VS_EAGER_BS1, np.nan),
        "speedup_bs1.interval": _interval(metrics, speed),
        "speed": rt.get(col.SPEED),
        "size_vs_baseline": row.get(col.stat(col.VS_SIZE), np.nan),
        "size_mb": metrics.get(schema.SIZE_MB),
        "file_mb": rt.get(col.FILE_MB, np.nan),
        "parity_delta": rt.get(col.PARITY_DELTA, np.nan),
        "data_fingerprint": tags.get(schema.DATA_FINGERPRINT),
        "source_run_id": run.info.run_id,
        "sweep_id": tags.get(schema.SWEEP_ID),
        "sweep_parent_run_id": parent_run_id,
        "command": command,
        **{key: tags.get(key) for key in schema.IDENTITY_TAGS},
    }
    return {key: _text(value) for key, value in facts.items()}


def _interval(metrics: dict, name: str) -> str:
    low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    return "-" if low is None or high is None else f"[{low:.3g}, {high:.3g}] (timing pass)"


def description(tags: dict[str, str]) -> str:
    """The version's page text: the reason line, then the verdict and its error rate, speed,
    size, lineage and the command, one fact a line (Markdown)."""
    t = tags
    return "\n".join(
        [
            f"**{t['variant']}** ({t['chosen_by']}), {t['runtime']}: {t['reason']}",
            "",
            f"- verdict on {t['verdict.metric']}: {t['verdict']} (Holm: {t['verdict.holm']}), "
            f"Δ {t['verdict.estimate']} {t['verdict.interval']} by {t['verdict.interval_method']}"
            f", margin {t['verdict.margin']}, one-sided α {t['verdict.alpha']} per bound, "
            f"k = {t['verdict.k']} variants judged against the baseline, {t['verdict.units']} "
            "units",
            f"- fidelity to the baseline: {t['fidelity']}",
            f"- speedup at batch 1 vs fp32 eager: {t['speedup_bs1']} {t['speedup_bs1.interval']}"
            f" ({t['speed']}); runtime form: {t['runtime.form']}",
            f"- size vs baseline: {t['size_vs_baseline']}; model file {t['size_mb']} MB; "
            f"shipped file {t['file_mb']} MB",
            f"- data {t['data']} {t['data_variant']} (fingerprint {t['data_fingerprint']}), fold "
            f"{t['fold']}, seed {t['seed']}",
            f"- source run {t['source_run_id']}, sweep {t['sweep_id']}",
            f"- reproduce: `{t['command']}`",
            f"- served answer checked before registration: {t.get('check', '-')}",
        ]
    )


def train_command(store: RunStore, run_id: str) -> str:
    """``python -m src.train <the job's overrides>``: the command that trains the run again
    (Hydra's record of the job, logged under ``config/.hydra``)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = store.download(run_id, f"{schema.HYDRA_ARTIFACT}/overrides.yaml", tmp)
        except (MlflowException, OSError):  # runs logged before Hydra's record was kept
            return "-"
        overrides = OmegaConf.to_container(OmegaConf.load(path)) or []
    return shlex.join(["python", "-m", "src.train", *[str(o) for o in overrides]])
