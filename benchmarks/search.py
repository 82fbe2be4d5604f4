"""Does the search find better trade-offs than the shipped recipes, for the same budget?

    python -m benchmarks.search                          # default data (about an hour on 2 cores)
    python -m benchmarks.search --trials 6 --store sqlite:///$PWD/outputs/bench-search.db
    python -m benchmarks.search --train data.synthetic.preset=small
    python -m benchmarks.search --store URI --reuse-grid   # an earlier grid, a new search

One store, one baseline: 1) the grid: every shipped recipe (``conf/method/*.yaml``) run once as
``src.train +method=M``; 2) ``python -m src.search`` with as many trials as the grid has recipes
(``--trials``), the goals of ``conf/search.yaml``. Both are read the same way from their runs
(:mod:`src.search.scoring`): the hypervolume of each set's front over (change of tuning AUROC,
batch-1 speedup, size ratio), with one reference point (the worst value of each objective over
both sets, pushed out by a tenth of its range), and their ratio; the number of trials the
search needed to meet the goals (and whether a recipe meets them); and mixed precision against
uniform dynamic int8 (speedup, size and the paired AUROC interval of each).
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
from src.search.app import scoring_of, search_spec
from src.search.report import TABLE
from src.search.scoring import Scoring, as_minimised, front_of, hypervolume
from src.tracking.store import RunStore, tag_clause

GRID = sorted(p.stem for p in (ROOT / "conf" / "method").glob("*.yaml") if p.stem != "baseline")
SETUP = ["trainer.threads=2", "benchmark.runtimes=[eager]"]


def scoring(train: list[str]) -> Scoring:
    """The search's own scoring of conf/search.yaml, for this config's task."""
    cfg = compose_train([*train], "search")
    return scoring_of(cfg, search_spec(cfg))


def run_grid(train: list[str], out: Path, score: Scoring, uri: str, reuse: bool) -> pd.DataFrame:
    """Every recipe once (``reuse``: the store's newest finished run of each recipe outside a
    sweep, from an earlier run of this benchmark)."""
    if reuse:
        found = {m: _logged(uri, m) for m in GRID}
        metrics_of = {m: metrics for m, metrics in found.items() if metrics}
    else:
        done = train_methods([*train, *SETUP], ["baseline", *GRID], out / "grid")
        metrics_of = {m: outcome.result.metrics for m, outcome in done.items()}
    rows = []
    for method in GRID:
        if method not in metrics_of:
            continue
        metrics = metrics_of[method]
        low, high = (metrics.get(name) for name in schema.interval("delta/auroc"))
        rows.append(
            {
                "method": method,
                **score.objectives(metrics),
                "verdict": score.verdict(metrics),
                "meets": not score.unmet(metrics),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def _logged(uri: str, method: str) -> dict | None:
    finished = [tag_clause(schema.METHOD, method), "attributes.status = 'FINISHED'"]
    runs = RunStore(uri).search(finished, order_by=["attributes.start_time DESC"])
    runs = [r for r in runs if schema.PARENT_RUN_ID not in r.data.tags]
    return dict(runs[0].data.metrics) if runs else None


def run_search(train: list[str], trials: int, uri: str, out: Path) -> pd.DataFrame:
    """``python -m src.search`` as users run it; its trial table from the parent run."""
    sweep = out / f"search-{int(time.time())}"
    cmd = [
        sys.executable,
        "-m",
        "src.search",
        *train,
        *SETUP,
        f"search.trials={trials}",
        f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    parent = RunStore(uri).sweep_parent(sweep.name)
    return pd.read_csv(RunStore(uri).download(parent, schema.table_artifact(TABLE), str(out)))


def volumes(grid: pd.DataFrame, found: pd.DataFrame) -> tuple[float, float, np.ndarray]:
    """Hypervolume of each set's front, one reference point: the worst of both, per objective."""
    sets = [s.dropna(subset=["task", "speedup", "size"]) for s in (grid, found)]
    points = [as_minimised(s) for s in sets]
    union = np.vstack(points)
    worst, best = union.max(axis=0), union.min(axis=0)
    # the nadir, pushed out so that it counts; an objective all candidates tie on (no change of
    # a saturated tuning AUROC) gets a fixed 0.01, so it scales both volumes alike
    reference = worst + np.where(worst > best, 0.1 * (worst - best), 0.01)
    fronts = [p[front_of(s).to_numpy()] for p, s in zip(points, sets, strict=True)]
    hv = [hypervolume(front, reference) for front in fronts]
    return hv[0], hv[1], reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=len(GRID), help="search trials (grid size)")
    parser.add_argument("--store", help="SQLite URI kept afterwards (default: a temporary one)")
    parser.add_argument("--train", nargs="*", default=[], help="src.train overrides for both")
    reuse = "read the grid from --store's earlier runs instead of training it"
    parser.add_argument("--reuse-grid", action="store_true", help=reuse)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.store or f"sqlite:///{tmp}/mlflow.db"
        train = [f"logger.tracking_uri={uri}", f"paths.data_dir={ROOT}/data", *args.train]
        score = scoring(args.train)
        grid = run_grid(train, Path(tmp), score, uri, args.reuse_grid)
        found = run_search(train, args.trials, uri, Path(tmp))
    report(grid, found, score)


def report(grid: pd.DataFrame, found: pd.DataFrame, score: Scoring) -> None:
    hv_grid, hv_search, reference = volumes(grid, found)
    rows = [
        (
            f"grid: {r.method}",
            f"{r.task:+.3f}",
            f"{r.speedup:.2f}x",
            f"{r.size:.2f}",
            r.verdict,
            "yes" if r.meets else "",
        )
        for r in grid.itertuples()
    ]
    rows += [
        (
            f"trial {r.trial}: {r.method} {r.params if isinstance(r.params, str) else ''}",
            f"{r.task:+.3f}",
            f"{r.speedup:.2f}x",
            f"{r.size:.2f}",
            str(r.verdict),
            "yes" if r.meets_goals is True else "",
        )
        for r in found.itertuples()
    ]
    header = ("candidate", "d tuning", "speedup bs1", "size", "test verdict", "goals")
    print_table("grid of shipped recipes vs search (objectives from each run)", rows, header)
    write_csv("search", [f"grid{len(grid)}", f"trials{len(found)}"], rows, header)
    met = found.index[found.meets_goals.astype(bool)] if "meets_goals" in found else []
    print(f"goals: {score.goals}")
    print(
        f"hypervolume (reference {np.round(reference, 3).tolist()}, minimised): grid "
        f"{hv_grid:.4g} over {len(grid)} runs, search {hv_search:.4g} over {len(found)} "
        f"trials; ratio search/grid {hv_search / max(hv_grid, 1e-12):.3f}"
    )
    print(
        f"trials to meet the goals: {met[0] + 1 if len(met) else 'not met'} "
        f"(grid recipes meeting them: {list(grid.method[grid.meets])})"
    )
    pair = grid.set_index("method").reindex(["dynamic", "mixed"])
    print(
        "mixed vs uniform dynamic int8: "
        + "; ".join(
            f"{m}: d tuning AUROC {r['task']:+.3f}, test interval [{r['ci_low']:+.3f}, "
            f"{r['ci_high']:+.3f}], {r['speedup']:.2f}x, size {r['size']:.2f}"
            for m, r in pair.iterrows()
        )
    )


if __name__ == "__main__":
    main()
