"""Time a selection of runs in fresh processes, from their logged files.

python -m src.timing sweep_id=ID                    a sweep's variants (make run calls this)
python -m src.timing sweep_id=ID processes=10       the publication setting
python -m src.timing data=battery +tags.fold=0      any selection src.leaderboard accepts

1) select the runs as the leaderboard does (``src.cli.selection``) and keep the FINISHED
training runs, with the runtimes each shipped; 2) download their files; 3) time every model in
``processes`` fresh interpreters, one after another (``src.pipeline.timing``); 4) estimate each
speedup over processes and write it onto the runs, with a run of the pass's own under the sweep's
parent (``src.pipeline.timing_record``); 5) print the speedups and how they were measured.
"""

from __future__ import annotations

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from src.board import columns as col
from src.cli import entry
from src.cli.resolvers import register_resolvers
from src.cli.selection import describe_filters, select_runs, selected_parent, selection
from src.core import schema
from src.core.errors import UserError
from src.core.paths import ROOT
from src.measure.latency import LatencySpec
from src.pipeline.timing import Target, TimingSpec
from src.pipeline.timing_record import time_targets
from src.tracking.store import FINISHED, RunStore

register_resolvers()
ConfigStore.instance().store(name="timing", node=OmegaConf.load(ROOT / "conf" / "timing.yaml"))


@entry.guard
def job(cfg: DictConfig) -> pd.DataFrame:
    """Select, fetch, time, estimate, record, print; bad input is one ``error:`` line."""
    store = RunStore.open(cfg.tracking_uri)
    parent_run_id = selected_parent(cfg, store)
    filters = selection(cfg)
    chosen = describe_filters(filters, cfg, parent_run_id)
    runs = select_runs(cfg, store, filters, parent_run_id, chosen)
    targets = timing_targets(runs, cfg.runtimes)
    spec = timing_spec(cfg, runs)
    earlier = None if cfg.rerun else timed_before(runs, targets, spec)
    if earlier:
        print(
            f"timing: the {len(targets)} run(s) ({chosen or 'all'}) were all timed by pass "
            f"{earlier} with these settings: not timed again (rerun=true times them again)"
        )
        return pd.DataFrame()
    print(f"timing {len(targets)} run(s) ({chosen or 'all'}) in {spec.processes} fresh processes")
    experiment = _experiment(store, parent_run_id, cfg)
    found = time_targets(store, targets, spec, experiment, parent_run_id)
    print_pass(found.estimates, runs, found.tags, found.skipped, found.run_id)
    return found.estimates


@hydra.main(version_base="1.3", config_path=None, config_name="timing")
def main(cfg: DictConfig):
    return job(cfg)


def timed_before(runs: pd.DataFrame, targets: list[Target], spec: TimingSpec) -> str | None:
    """The one earlier pass that timed every variant of the targets (and with them their
    baselines) side by side with these settings (tags ``timing.run_id`` and ``timing.key`` on
    each variant), or None."""
    variants = sorted({t.run_id for t in targets if t.run_id != t.baseline_run_id})
    by_id = runs.set_index(col.RUN_ID)
    if not variants or not set(variants) <= set(by_id.index):
        return None
    tags = by_id.loc[variants]
    keys = tags.get(col.tag(schema.TIMING_KEY), pd.Series(dtype=object))
    passes = tags.get(col.tag(schema.TIMING_RUN_ID), pd.Series(dtype=object))
    if len(keys) != len(variants) or keys.isna().any() or set(keys) != {spec.key}:
        return None
    return passes.iloc[0] if passes.notna().all() and passes.nunique() == 1 else None


def timing_targets(runs: pd.DataFrame, runtimes) -> list[Target]:
    """The FINISHED training runs of the selection, each with eager and the runtimes it shipped
    (``runtime.<name>.form`` tag), narrowed to ``runtimes`` when given."""
    wanted = None if runtimes is None else {schema.EAGER, *map(str, runtimes)}
    finished = runs[runs[col.STATUS] == FINISHED]
    analysis = finished.get(col.tag(schema.ANALYSIS), pd.Series(None, index=finished.index))
    finished = finished[analysis.isna() & finished[col.tag(schema.METHOD)].notna()]
    shipped = [
        c for c in finished.columns if c.startswith(col.tag("runtime.")) and c.endswith(".form")
    ]
    targets = []
    for _, row in finished.iterrows():
        names = [
            c.removeprefix(col.tag("runtime.")).removesuffix(".form")
            for c in shipped
            if pd.notna(row[c])
        ]
        names = [n for n in dict.fromkeys([schema.EAGER, *names]) if wanted is None or n in wanted]
        baseline = row.get(col.tag(schema.BASELINE_RUN_ID))
        run_id = row[col.RUN_ID]
        targets.append(
            Target(run_id, baseline if isinstance(baseline, str) else run_id, tuple(names))
        )
    if not targets:
        raise UserError("no FINISHED training run in the selection: nothing to time")
    return targets


def timing_spec(cfg: DictConfig, runs: pd.DataFrame) -> TimingSpec:
    """The pass's settings; batch sizes default to the runs' own (``latency.batch_sizes``)."""
    sizes = cfg.batch_sizes
    if sizes is None:
        logged = runs.get(col.tag(schema.LATENCY_BATCH_SIZES), pd.Series(dtype=object)).dropna()
        if logged.empty:
            raise UserError("the runs logged no latency.batch_sizes: pass batch_sizes=[1,64]")
        sizes = [int(b) for b in str(logged.iloc[0]).split(",")]
    latency = LatencySpec(
        batch_sizes=tuple(int(b) for b in sizes),
        warmup=int(cfg.warmup),
        iters=int(cfg.iters),
        threads=int(cfg.threads) if cfg.threads is not None else None,
        rounds=int(cfg.rounds),
        block_seconds=cfg.block_seconds,
        large_batch_rounds=cfg.large_batch_rounds,
    )
    return TimingSpec(latency, int(cfg.processes), int(cfg.seed), float(cfg.level))


def _experiment(store: RunStore, parent_run_id: str | None, cfg: DictConfig) -> str:
    if parent_run_id:
        return store.experiment_name(store.get(parent_run_id).info.experiment_id)
    return str(cfg.timing_experiment)


def print_pass(
    table: pd.DataFrame, runs: pd.DataFrame, tags: dict, skipped: dict, run_id: str
) -> None:
    """The speedups per run and runtime, and one line on how they were measured."""
    method = runs.set_index(col.RUN_ID)[col.tag(schema.METHOD)]
    fold = runs.set_index(col.RUN_ID).get(col.tag(schema.FOLD))
    shown = table.assign(
        method=table["run_id"].map(method),
        fold=table["run_id"].map(fold) if fold is not None else "",
        speedup=[
            f"{s:.3g}x [{lo:.3g}, {hi:.3g}]"
            for s, lo, hi in zip(table.speedup, table.ci_low, table.ci_high, strict=True)
        ],
    )
    columns = [
        "method",
        "fold",
        "runtime",
        "against",
        "batch",
        "speedup",
        "sd_between",
        "sd_within",
        "processes_for_10pct",
    ]
    print(
        shown[columns]
        .sort_values(["fold", "method", "runtime", "against", "batch"])
        .to_string(index=False)
    )
    print(f"{speed_note(tags)}; pass run {run_id}")
    for key, why in skipped.items():
        print(f"not timed: {key}: {why}")


def speed_note(tags: dict) -> str:
    """``speed: 5 fresh processes x 3 rounds, 2 threads ...``: how a pass measured."""
    return (
        f"speed: {tags[schema.TIMING_PROCESSES]} fresh processes x "
        f"{tags[schema.TIMING_ROUNDS]} rounds, {tags[schema.TIMING_THREADS]} threads; "
        f"preempted blocks {tags[schema.TIMING_PREEMPTED]}; intervals: t over processes"
    )


if __name__ == "__main__":
    entry.run(main)
