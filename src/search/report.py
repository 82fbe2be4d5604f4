"""What a search leaves behind: every trial with its verdict, the Pareto front (table and plot),
the chosen candidate as a ready ``python -m src.train`` command and its model artifact; logged to
the sweep's parent run and printed."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from src.board.verdict import TableSource
from src.core import schema
from src.search.scoring import DIRECTIONS, Scoring, front_of
from src.search.trials import Trial, looked_at, trial_table
from src.tracking.store import RunStore

TABLE, PLOT = "search_trials", "search_front.png"


@dataclass
class SearchReport:
    """The trials (``on_front``, ``chosen`` columns), the chosen trial's row, why it was, how
    it was selected, and its confirmatory test verdict (:meth:`Scoring.confirm`)."""

    trials: pd.DataFrame
    chosen: pd.Series | None
    why: str
    selected_on: str = ""
    confirmatory: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        return "" if self.chosen is None else self.chosen["command"]

    def confirmatory_line(self) -> str:
        """The confirmatory verdict in one line: verdict, interval, alpha, k, margin."""
        c = self.confirmatory
        if not c:
            return "no trial chosen: no confirmatory verdict"
        if "ci_low" not in c:
            return f"confirmatory test verdict: {c['verdict']}"
        return (
            f"confirmatory test verdict: {c['verdict']} (difference {c['difference']:+.4f}, "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] {c['interval']}, one-sided alpha "
            f"{c['alpha']:.4g} per bound, k={c['k']}, margin {c['margin']:g}, "
            f"{c['units']} units)"
        )


def build_report(
    trials: list[Trial], scoring: Scoring, base: list[str], tables: TableSource | None = None
) -> SearchReport:
    """The report of a finished search; ``tables(run_id)``: a run's paired table, read once,
    for the chosen trial only (its confirmatory verdict)."""
    table = trial_table(trials, scoring)
    for column in DIRECTIONS:
        if column not in table:
            table[column] = np.nan
    table["on_front"] = front_of(table).astype(bool)
    by_number = {t.number: t for t in trials}
    table["command"] = [ready_command(by_number[n], base) for n in table.trial]
    finished = table[table.run_id.notna()] if "run_id" in table else table  # none: no columns
    chosen, why = choose(finished)
    table["chosen"] = table.trial == (chosen["trial"] if chosen is not None else -1)
    k = looked_at(trials) if scoring.on_test else 1
    selected_on = (
        f"selected on test among {k} trials: each judged at alpha/{k}"
        if scoring.on_test
        else "selected on the tuning split; the test split read once, for the chosen trial"
    )
    confirmatory = {}
    if chosen is not None:
        paired = tables(chosen["run_id"]) if tables is not None else None
        confirmatory = scoring.confirm(paired, k)
        table["confirmatory_verdict"] = np.where(table.chosen, confirmatory["verdict"], "")
    row = None if chosen is None else table[table.chosen].iloc[0]
    return SearchReport(table, row, why, selected_on, confirmatory)


def choose(done: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The first trial that met every goal; else, on the front, the fastest trial that kept the
    accuracy goal; else the front's most faithful trial. Reads the columns of
    :func:`trial_table` only: no test figure unless the search selects on test."""
    if done.empty:
        return None, "no trial finished"
    met = done[done.get("meets_goals", pd.Series(False, index=done.index)).astype(bool)]
    if len(met):
        return met.iloc[0], "the first trial that met every goal"
    front = done[done.on_front]
    kept = front[front.get("keeps_accuracy", pd.Series(True, index=front.index)).astype(bool)]
    kept = kept.dropna(subset=["speedup"])
    if len(kept):
        return kept.loc[kept.speedup.idxmax()], (
            "no trial met every goal: the fastest trial on the front that kept the accuracy goal"
        )
    front = front.dropna(subset=["fidelity"])
    if len(front):
        return front.loc[front.fidelity.idxmin()], (
            "no trial met every goal or kept the accuracy goal: the front's most faithful trial"
        )
    return None, "no trial logged every objective"


def ready_command(trial: Trial, base: list[str]) -> str:
    """``python -m src.train`` with the trial's overrides, and what its method settled on data
    (mixed's fp32 layers) so that the command rebuilds exactly that model."""
    own = ("benchmark.runtimes=", "search.", "hydra")  # the search's, not the model's
    asked = [o for o in trial.overrides if not o.startswith(own)]
    settled = [
        f"method.{k}={json.dumps(v, separators=(',', ':'))}"
        for k, v in trial.method.items()
        if k == "keep" and v is not None
    ]
    return shlex.join(["python", "-m", "src.train", *asked, *settled])


def log_report(report: SearchReport, store: RunStore, parent_run_id: str, out_dir: Path) -> None:
    """Table, plot and the chosen candidate on the parent run (``tables/``, ``plots/``, tags)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / f"{TABLE}.csv"
    report.trials.to_csv(table_path, index=False)
    store.log_artifact(parent_run_id, table_path, schema.TABLES_DIR)
    store.log_artifact(parent_run_id, front_plot(report.trials, out_dir / PLOT), schema.PLOTS_DIR)
    tags = {
        "search.trials": str(len(report.trials)),
        "search.chosen_why": report.why,
        "search.speed_from": speed_note(report.trials),
        "search.selected_on": report.selected_on,
        "search.confirmatory": report.confirmatory_line()[:5000],
    }
    if report.confirmatory:
        tags["search.confirmatory_verdict"] = report.confirmatory["verdict"]
    if report.chosen is not None:
        met = bool(report.chosen.get("meets_goals", False))
        tags.update(
            {
                "search.chosen_run_id": report.chosen["run_id"],
                "search.chosen_command": report.command[:5000],
                "search.met_goals": str(met),
            }
        )
    for key, value in tags.items():
        store.client.set_tag(parent_run_id, key, value)


def front_plot(trials: pd.DataFrame, path: Path) -> Path:
    """Task change against speedup for every trial; the front joined, the chosen one ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    done = trials.dropna(subset=["fidelity", "speedup"])
    sizes = 400 / np.clip(done["size"].fillna(1).to_numpy(float), 0.05, None) ** 0.5
    ax.scatter(
        done.speedup,
        done.fidelity,
        s=sizes,
        c=done.on_front.map({True: "tab:red", False: "tab:gray"}),
        alpha=0.7,
    )
    front = done[done.on_front].sort_values("speedup")
    ax.plot(front.speedup, front.fidelity, color="tab:red", lw=1)
    for _, row in done.iterrows():
        ax.annotate(f"{row.trial}:{row.method}", (row.speedup, row.fidelity), fontsize=7)
    chosen = done[done.chosen]
    ax.scatter(chosen.speedup, chosen.fidelity, s=600, facecolors="none", edgecolors="k")
    for _, row in chosen.iterrows():
        verdict = row.get("confirmatory_verdict", "")
        ax.annotate(
            f"chosen; confirmatory test verdict: {verdict}",
            (row.speedup, row.fidelity),
            xytext=(8, -14),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel(f"speedup at batch 1 (x, vs its fp32 baseline; {speed_note(trials)})")
    ax.set_ylabel("distance from the baseline's answers on the tuning split (0: the same)")
    ax.set_title("search trials (marker area ~ 1/size ratio; red: Pareto front)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_report(report: SearchReport) -> None:
    table = Table(title=f"search: {len(report.trials)} trials (front marked *)")
    columns = ("fidelity", "separation_change", "speedup", "speedup_low", "size")
    for column in ("trial", "method", "params", *columns, "goals"):
        table.add_column(
            column, justify="left" if column in ("method", "params", "goals") else "right"
        )
    for _, row in report.trials.iterrows():
        cells = [f"{row.trial}{'*' if row.on_front else ''}", row.method, row.params]
        cells += [_fmt(row.get(k)) for k in columns]
        goals = "met" if row.get("meets_goals") is True else row.get("unmet_goals")
        cells.append(str(goals or row.get("error") or ""))
        table.add_row(*cells)
    Console(width=180).print(table)
    print(f"speedup: {speed_note(report.trials)}")
    print(f"chosen: {report.why} ({report.selected_on})")
    if report.chosen is not None:
        run_id = report.chosen["run_id"]
        print(f"  run {run_id}, artifact runs:/{run_id}/{schema.MODEL_ARTIFACT}")
        print(f"  {report.confirmatory_line()}")
        print(f"  {report.command}")


def speed_note(trials: pd.DataFrame) -> str:
    """How the trials' speedups were measured: ``"12 trial(s) from fresh processes"``."""
    counts = trials.get("speed_from", pd.Series(dtype=object)).dropna().value_counts()
    if counts.empty:
        return "no trial was timed"
    return ", ".join(f"{n} trial(s) from {how}" for how, n in counts.items())


def _fmt(value) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.4g}"
    )
