"""Do two timing passes of one sweep agree? And how many processes does +-10 % take?

python -m benchmarks.timing_passes --sweep-id ID                 two passes at the defaults
python -m benchmarks.timing_passes --sweep-id ID --args processes=8 rounds=3

Runs ``python -m src.timing sweep_id=ID`` twice, one after the other (each its own fresh
processes; the second pass's figures are the ones left on the runs), reads both passes'
estimates from their runs (``tables/timing_speedups.csv``) and, per run, runtime, reference and
batch size, checks that the two 95 % intervals overlap and that the point estimates are within
15 % of each other. It prints the between-process SD of the log speedup each pass measured (the
random effect an in-run interval cannot see), the within-process SD, and the processes a +-10 %
interval needs at the pass's rounds and threads (:func:`src.stats.speed.processes_for`, from the
pooled variance components of the two passes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.common import print_table, write_csv
from src.core import schema
from src.core.paths import ROOT
from src.stats.speed import processes_for
from src.tracking.store import RunStore

AGREE = 0.15  # point estimates within 15 % of each other


def run_pass(sweep_id: str, args: list[str]) -> tuple[str, float]:
    """One ``python -m src.timing`` over the sweep; (its pass run id, seconds)."""
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "src.timing", f"sweep_id={sweep_id}", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise SystemExit(f"src.timing failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(proc.stdout)
    line = next(x for x in proc.stdout.splitlines() if "pass run " in x)
    return line.rsplit("pass run ", 1)[1].strip(), time.perf_counter() - started


def estimates(store: RunStore, pass_id: str) -> pd.DataFrame:
    table = store.read_table(pass_id, schema.TIMING_SPEEDUPS)
    if table is None:
        raise SystemExit(f"pass {pass_id} logged no {schema.TIMING_SPEEDUPS} table")
    return table


def compare(first: pd.DataFrame, second: pd.DataFrame, methods: dict) -> pd.DataFrame:
    keys = ["run_id", "runtime", "against", "batch"]
    both = first.merge(second, on=keys, suffixes=("_1", "_2"))
    both["method"] = both["run_id"].map(methods)
    both["overlap"] = (both["ci_low_1"] <= both["ci_high_2"]) & (
        both["ci_low_2"] <= both["ci_high_1"]
    )
    both["ratio"] = both["speedup_2"] / both["speedup_1"]
    both["agree"] = both["overlap"] & (abs(both["ratio"] - 1) <= AGREE)
    rounds = int(both["rounds_1"].max())
    var_b = (both["sd_between_1"] ** 2 + both["sd_between_2"] ** 2) / 2
    var_w = (both["sd_within_1"] ** 2 + both["sd_within_2"] ** 2) / 2
    both["processes_for_10pct"] = [
        processes_for(b, w, rounds) for b, w in zip(var_b, var_w, strict=True)
    ]
    return both.sort_values(["method", "runtime", "against", "batch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-id", required=True)
    parser.add_argument("--args", nargs="*", default=[], help="src.timing overrides")
    options = parser.parse_args()
    store = RunStore.open()
    (first_id, first_s), (second_id, second_s) = (
        run_pass(options.sweep_id, options.args) for _ in range(2)
    )
    parent = store.sweep_parent(options.sweep_id)
    runs = store.search([f"tags.`{schema.PARENT_RUN_ID}` = '{parent}'"])
    methods = {r.info.run_id: r.data.tags.get(schema.METHOD, "?") for r in runs}
    table = compare(estimates(store, first_id), estimates(store, second_id), methods)
    rows = [
        (
            r.method, r.runtime, r.against, str(r.batch),
            f"{r.speedup_1:.3g} [{r.ci_low_1:.3g}, {r.ci_high_1:.3g}]",
            f"{r.speedup_2:.3g} [{r.ci_low_2:.3g}, {r.ci_high_2:.3g}]",
            f"{r.ratio:.3f}", "yes" if r.overlap else "NO", "yes" if r.agree else "NO",
            f"{r.sd_between_1:.3f} / {r.sd_between_2:.3f}",
            f"{r.sd_within_1:.3f} / {r.sd_within_2:.3f}",
            str(r.processes_for_10pct),
        )
        for r in table.itertuples()
    ]  # fmt: skip
    header = (
        "method", "runtime", "against", "batch", "pass 1", "pass 2", "2 / 1", "overlap",
        "agree (15 %)", "sd between (1 / 2)", "sd within (1 / 2)", "processes for +-10 %",
    )  # fmt: skip
    print_table(f"two timing passes of {options.sweep_id}", rows, header)
    agreed = int(table["agree"].sum())
    print(
        f"agree: {agreed}/{len(table)} (intervals overlap and estimates within {AGREE:.0%}); "
        f"pass seconds {first_s:.0f}, {second_s:.0f}; passes {first_id}, {second_id}; "
        f"median processes for +-10 %: {int(np.median(table['processes_for_10pct']))}, "
        f"max {int(table['processes_for_10pct'].max())}; "
        f"median SD between {np.median(table[['sd_between_1', 'sd_between_2']]):.3f}"
    )
    write_csv("timing_passes", [options.sweep_id, *options.args], rows, header)


if __name__ == "__main__":
    main()
