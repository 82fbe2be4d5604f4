"""What a timing pass concludes and where it writes it.

Per timed run, runtime and batch size: the speedup against the fp32 model in eager (the one
reference of every runtime, as in-run latency), against the fp32 model in the same runtime, and
against the fp32 model in its own fastest runtime at that batch size (the question a deployment
asks: does compressing beat just switching runtime?), each over processes
(:func:`src.stats.speed.speedup_over_processes`), with the between- and within-process spread
of the log speedup and the processes a +-10 % interval would need.

The pass's own run (tagged ``analysis=timing`` under the sweep's parent, never ranked) keeps the
raw blocks, the process facts and the estimates as tables; each timed run gets its
``timing/<runtime>/...`` metrics and the ``timing.*`` tags that say how they were measured (the
newest pass wins, as a re-run does on the board).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.core import schema
from src.measure.rounds import log_ratios
from src.pipeline.timing import (
    Target,
    TimingSpec,
    WorkerJob,
    blocks_frame,
    fetch_files,
    model_key,
    run_processes,
)
from src.stats.speed import speedup_over_processes
from src.tracking.mlflow_run import TrackedRun, tracked_run
from src.tracking.store import RunStore

SPEEDUP, VS_FP32 = "speedup", "vs_fp32"  # against the fp32 model in eager / in the same runtime
VS_BEST = "vs_fp32_best"  # against the fp32 model in its fastest runtime at the batch size
HALF_WIDTH = 0.10  # the interval a pass is sized for: +-10 %


@dataclass(frozen=True)
class Comparison:
    """A candidate's time against a reference's, both timed in every process."""

    run_id: str
    runtime: str
    against: str  # SPEEDUP, VS_FP32 or VS_BEST
    candidate: str
    reference: str  # VS_BEST: "" (the fastest of ``references`` at each batch size)
    references: tuple[str, ...] = ()


def comparisons(targets: list[Target], timed: set[str]) -> list[Comparison]:
    """Every (run, runtime) that was timed, against its fp32 baseline in eager and in the same
    runtime (the baseline's own eager row is 1 by definition and left out)."""
    out = []
    for t in targets:
        for runtime in t.runtimes:
            candidate = model_key(t.run_id, runtime)
            refs = {
                SPEEDUP: model_key(t.baseline_run_id, schema.EAGER),
                VS_FP32: model_key(t.baseline_run_id, runtime),
            }
            for against, reference in refs.items():
                if against == VS_FP32 and runtime == schema.EAGER:
                    continue  # the same reference as SPEEDUP
                if reference != candidate and {reference, candidate} <= timed:
                    out.append(Comparison(t.run_id, runtime, against, candidate, reference))
            fp32 = tuple(sorted(k for k in timed if k.startswith(model_key(t.baseline_run_id, ""))))
            if t.run_id != t.baseline_run_id and candidate in timed and fp32:
                out.append(Comparison(t.run_id, runtime, VS_BEST, candidate, "", fp32))
    return out


def fastest(blocks: pd.DataFrame, keys: tuple[str, ...], batch: int) -> str:
    """Of ``keys``, the one whose median block time at ``batch`` is smallest."""
    rows = blocks[(blocks["batch"] == batch) & blocks["model"].isin(keys)]
    return "" if rows.empty else str(rows.groupby("model")["median_s"].median().idxmin())


def estimate(blocks: pd.DataFrame, pairs: list[Comparison], level: float) -> pd.DataFrame:
    """One row per comparison and batch size: speedup, interval, processes, rounds, the
    between- and within-process SD of the log speedup, and the processes for +-10 %."""
    rows = []
    for pair in pairs:
        for batch in sorted(blocks["batch"].unique()):
            reference = pair.reference or fastest(blocks, pair.references, int(batch))
            logs = log_ratios(blocks, reference, pair.candidate, int(batch))
            if not np.isfinite(logs).any():
                continue
            found = speedup_over_processes(logs, level)
            rows.append(
                {
                    "run_id": pair.run_id,
                    "runtime": pair.runtime,
                    "against": pair.against,
                    "reference": reference,
                    "batch": int(batch),
                    "speedup": found.speedup,
                    "ci_low": found.low,
                    "ci_high": found.high,
                    "processes": found.processes,
                    "rounds": found.rounds,
                    "sd_between": found.sd_between,
                    "sd_within": float(np.sqrt(found.sigma_w2)),
                    "processes_for_10pct": found.processes_for(HALF_WIDTH),
                }
            )
    return pd.DataFrame(rows)


def run_metrics(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``timing/<runtime>/<against>_bs1`` (and ``_bsN`` for the largest batch), with
    ``_ci_low``/``_ci_high`` and, for the speedup, ``sd_between_*``/``sd_within_*``; per run."""
    out: dict[str, dict[str, float]] = {}
    if table.empty:
        return out
    largest = int(table["batch"].max())
    for row in table.itertuples():
        sizes = [s for s, b in (("bs1", 1), ("bsN", largest)) if row.batch == b]
        for size in sizes:
            name = schema.timing_metric(row.runtime, f"{row.against}_{size}")
            low, high = schema.interval(name)
            found = {name: row.speedup, low: row.ci_low, high: row.ci_high}
            if row.against == SPEEDUP:
                found[schema.timing_metric(row.runtime, f"sd_between_{size}")] = row.sd_between
                found[schema.timing_metric(row.runtime, f"sd_within_{size}")] = row.sd_within
            out.setdefault(row.run_id, {}).update(found)
    return out


def setup_tags(spec: TimingSpec, blocks: pd.DataFrame, facts: pd.DataFrame) -> dict[str, str]:
    """How the pass measured, as tags of its run and of every run it timed."""
    preempted = int(blocks["preempted"].sum()) if not blocks.empty else 0
    return {
        schema.TIMING_PROCESSES: str(int(facts["process"].nunique())),
        schema.TIMING_ROUNDS: spec.latency.rounds_label(),
        schema.TIMING_THREADS: str(int(facts["threads"].iloc[0])),
        schema.TIMING_PREEMPTED: f"{preempted}/{len(blocks)}",
        schema.TIMING_BATCH_SIZES: ",".join(str(b) for b in spec.latency.batch_sizes),
        schema.TIMING_KEY: spec.key,
    }


def record(
    store: RunStore,
    experiment: str,
    parent_run_id: str | None,
    spec: TimingSpec,
    outcome: dict,
) -> str:
    """Write the pass: its own run (tables, tags) and each timed run's ``timing/*`` metrics.

    Args:
        outcome: ``blocks``, ``facts``, ``estimates`` (frames) and ``skipped`` (key -> why).

    Returns:
        The pass's run id.
    """
    blocks, facts, table = outcome["blocks"], outcome["facts"], outcome["estimates"]
    tags = {
        **setup_tags(spec, blocks, facts),
        schema.ANALYSIS: schema.TIMING_KIND,
        schema.SOURCE_NAME: "src.timing",
        schema.TIMING_SKIPPED: json.dumps(outcome["skipped"]),
    }
    if parent_run_id:
        tags[schema.PARENT_RUN_ID] = parent_run_id
    with tracked_run(store, experiment, "timing", tags) as run:
        run.log_table(schema.TIMING_BLOCKS, blocks)
        run.log_table(schema.TIMING_SPEEDUPS, table)
        run.log_table(schema.TIMING_FACTS, facts)
        for run_id, metrics in run_metrics(table).items():
            timed = TrackedRun(store.client, run_id, store.uri)
            timed.log_metrics(metrics)
            timed.set_tags({**setup_tags(spec, blocks, facts), schema.TIMING_RUN_ID: run.run_id})
        return run.run_id


@dataclass(frozen=True)
class PassResult:
    """What one pass wrote: its run, the estimates, how it measured, what it could not open."""

    run_id: str
    estimates: pd.DataFrame
    tags: dict
    skipped: dict


def time_targets(
    store: RunStore,
    targets: list[Target],
    spec: TimingSpec,
    experiment: str,
    parent_run_id: str | None,
) -> PassResult:
    """The whole pass over ``targets``: fetch their files, time them in ``spec.processes``
    fresh processes, estimate every comparison over processes and record it (:func:`record`).
    The one estimator behind ``python -m src.timing`` and the search's speed objective."""
    with tempfile.TemporaryDirectory() as tmp:  # the workers read the files from here
        files = tuple(fetch_files(targets, store, Path(tmp)))
        job = WorkerJob(0, spec.seed, spec.latency, files)
        results = run_processes(job, spec.processes, spec.seed)
    blocks = blocks_frame(results)
    skipped = {k: v for r in results for k, v in r["skipped"].items()}
    timed = set(blocks["model"]) if not blocks.empty else set()
    table = estimate(blocks, comparisons(targets, timed), spec.level)
    facts = pd.DataFrame([r["facts"] for r in results])
    outcome = {"blocks": blocks, "facts": facts, "estimates": table, "skipped": skipped}
    run_id = record(store, experiment, parent_run_id, spec, outcome)
    return PassResult(run_id, table, setup_tags(spec, blocks, facts), skipped)
