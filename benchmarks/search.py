"""Does the search find better trade-offs than the shipped recipes, for the same budget, and does
it do so for more than one search seed?

    python -m benchmarks.search                                   # default data, 3 search seeds
    python -m benchmarks.search --seeds 0 1 2 --trials 6 --train data.synthetic.preset=small
    python -m benchmarks.search --store URI --reuse-grid          # an earlier grid, new searches

One store, one baseline: 1) the grid: every shipped recipe (``conf/method/*.yaml``) run once as
``src.train +method=M``, then timed with the search's own timing pass (``search.timing``: fresh
processes, each recipe beside its fp32 baseline); 2) ``python -m src.search`` once per search seed
(``--seeds``, a new study each) with as many trials as the grid has recipes (``--trials``, all of
them run: ``search.stop_at_goals=false``) and the goals of ``conf/search.yaml``. Every candidate is
read the same way from its run (:mod:`src.search.scoring`): the hypervolume of each set's front
over the search's objectives (the distance from the baseline's answers on the tuning split, the
batch-1 speedup from fresh processes, the size ratio), with one reference point for every set (the
worst value of each objective over all of them, pushed out by a tenth of its range). Printed: each
set's volume, the ratio search / grid per seed and its mean with a t interval over the seeds (the
seed is the unit: the grid is one fixed set), the trials each seed needed to meet the goals, and
each seed's chosen trial with its confirmatory test verdict.

What it does not show: whether a front is better at any single operating point (a larger
volume can come from a corner nobody ships), nor anything about test accuracy beyond the one
confirmatory verdict per chosen trial (the objectives read the tuning split only).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import print_table, write_csv
from src.cli.jobs import compose_train, train_methods
from src.core import schema
from src.core.paths import ROOT
from src.search.app import batch_timer, scoring_of, search_spec
from src.search.report import TABLE
from src.search.scoring import DIRECTIONS, Scoring, as_minimised, front_of, hypervolume
from src.stats.delong import t_quantile
from src.tracking.store import RunStore, tag_clause

GRID = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml") if p.stem != "baseline")
SETUP = ["trainer.threads=2", "benchmark.runtimes=[eager]"]


def run_grid(train: list[str], out: Path, uri: str, reuse: bool) -> dict[str, str]:
    """Every recipe once: ``{method: run id}`` (``reuse``: the store's newest finished run of
    each recipe outside a sweep, from an earlier run of this benchmark)."""
    if reuse:
        found = {m: _logged(uri, m) for m in GRID}
        return {m: run_id for m, run_id in found.items() if run_id}
    done = train_methods([*train, *SETUP], ["baseline", *GRID], out / "grid")
    return {m: outcome.run_id for m, outcome in done.items() if m != schema.BASELINE}


def _logged(uri: str, method: str) -> str | None:
    finished = [tag_clause(schema.METHOD, method), "attributes.status = 'FINISHED'"]
    runs = RunStore(uri).search(finished, order_by=["attributes.start_time DESC"])
    runs = [r for r in runs if schema.PARENT_RUN_ID not in r.data.tags]
    return runs[0].info.run_id if runs else None


def grid_table(runs: dict[str, str], train: list[str], score: Scoring, uri: str) -> pd.DataFrame:
    """The grid timed by the search's own pass, then read as the search reads a trial."""
    cfg = compose_train([*train, *SETUP], "search")
    store = RunStore(uri)
    timer = batch_timer(cfg, search_spec(cfg), score, store, None)
    if timer is not None:
        timer(list(runs.values()))
    rows = []
    for method, run_id in runs.items():
        metrics = dict(store.get(run_id).data.metrics)
        unmet = score.unmet(metrics)
        rows.append(
            {
                "method": method,
                "run_id": run_id,
                **score.objectives(metrics),
                "speed_from": score.speed_from(metrics),
                "meets": not unmet,
            }
        )
    return pd.DataFrame(rows)


def run_search(train: list[str], trials: int, seed: int, uri: str, out: Path) -> pd.DataFrame:
    """``python -m src.search`` as users run it (a new study per seed); its trial table."""
    sweep = out / f"search-s{seed}-{int(time.time())}"
    cmd = [
        sys.executable,
        "-m",
        "src.search",
        *train,
        *SETUP,
        f"search.trials={trials}",
        f"search.seed={seed}",
        "search.resume=never",
        "search.stop_at_goals=false",  # the whole budget: fronts of equal cost
        f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    parent = RunStore(uri).sweep_parent(sweep.name)
    table = pd.read_csv(RunStore(uri).download(parent, schema.table_artifact(TABLE), str(out)))
    table["seed"] = seed
    return table


def volumes(sets: list[pd.DataFrame]) -> tuple[list[float], np.ndarray]:
    """Hypervolume of each set's front with one reference point: the worst of all sets per
    objective, pushed out by a tenth of its range (0.01 where every candidate ties)."""
    sets = [s.dropna(subset=list(DIRECTIONS)) for s in sets]
    points = [as_minimised(s) for s in sets]
    union = np.vstack(points)
    worst, best = union.max(axis=0), union.min(axis=0)
    reference = worst + np.where(worst > best, 0.1 * (worst - best), 0.01)
    fronts = [p[front_of(s).to_numpy()] for p, s in zip(points, sets, strict=True)]
    return [hypervolume(front, reference) for front in fronts], reference


def ratio_interval(ratios: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-seed ratios and its t interval over seeds (NaN ends with one seed)."""
    n, mean = len(ratios), float(np.mean(ratios))
    if n < 2:
        return mean, float("nan"), float("nan")
    half = t_quantile((1 + level) / 2, n - 1) * float(np.std(ratios, ddof=1)) / np.sqrt(n)
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=len(GRID), help="search trials (grid size)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search seeds")
    parser.add_argument("--store", help="SQLite URI kept afterwards (default: a temporary one)")
    parser.add_argument("--train", nargs="*", default=[], help="src.train overrides for both")
    reuse = "read the grid from --store's earlier runs instead of training it"
    parser.add_argument("--reuse-grid", action="store_true", help=reuse)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.store or f"sqlite:///{tmp}/mlflow.db"
        train = [f"logger.tracking_uri={uri}", f"paths.data_dir={ROOT}/data", *args.train]
        cfg = compose_train([*args.train], "search")
        score = scoring_of(cfg, search_spec(cfg))
        grid = grid_table(run_grid(train, Path(tmp), uri, args.reuse_grid), train, score, uri)
        found = [run_search(train, args.trials, s, uri, Path(tmp)) for s in args.seeds]
    report(grid, found, score, args.trials)


def report(grid: pd.DataFrame, found: list[pd.DataFrame], score: Scoring, trials: int) -> None:
    (hv_grid, *hv_seeds), reference = volumes([grid, *found])
    ratios = np.array(hv_seeds) / max(hv_grid, 1e-12)
    header = ("set", "candidate", "fidelity", "speedup bs1", "size", "goals", "confirmatory")
    rows = [
        (
            "grid",
            r.method,
            f"{r.fidelity:.4f}",
            f"{r.speedup:.2f}x",
            f"{r.size:.2f}",
            "met" if r.meets else "",
            "",
        )
        for r in grid.itertuples()
    ]
    for table in found:
        for r in table[table.chosen.astype(bool)].itertuples():
            rows.append(
                (
                    f"seed {r.seed}",
                    f"trial {r.trial}: {r.method} {_text(r.params)}",
                    f"{r.fidelity:.4f}",
                    f"{r.speedup:.2f}x",
                    f"{r.size:.2f}",
                    "met" if _true(r.meets_goals) else "",
                    _text(r.confirmatory_verdict),
                )
            )
    print_table("grid of shipped recipes vs the search's chosen trial per seed", rows, header)
    write_csv("search", [f"grid{len(grid)}", f"trials{trials}", f"seeds{len(found)}"], rows, header)
    mean, low, high = ratio_interval(ratios)
    print(f"goals: {score.goals}; speed: grid {set(grid.speed_from)}")
    print(
        f"hypervolume (reference {np.round(reference, 4).tolist()}, objectives {list(DIRECTIONS)}"
        f" minimised): grid {hv_grid:.4g} over {len(grid)} recipes; search per seed "
        + ", ".join(f"{hv:.4g}" for hv in hv_seeds)
        + f" over {trials} trials each"
    )
    print(
        "ratio search / grid per seed: "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f"; mean {mean:.3f} [{low:.3f}, {high:.3f}] (95 % t interval over "
        f"{len(ratios)} seeds)"
    )
    for table in found:
        met = table.index[table.meets_goals.fillna(False).astype(bool)]
        print(
            f"seed {int(table.seed.iloc[0])}: trials to meet the goals "
            f"{met[0] + 1 if len(met) else 'not met'}"
        )
    print(f"grid recipes meeting them: {list(grid.method[grid.meets])}")


def _true(value) -> bool:
    """A CSV's True (bool, numpy bool or text), not NaN."""
    return str(value) == "True"


def _text(value) -> str:
    return value if isinstance(value, str) else ""


if __name__ == "__main__":
    main()
