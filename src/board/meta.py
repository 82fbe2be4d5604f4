"""Provenance written beside every table: code version, exact command, selection, and how the
numbers were measured (read back from the runs' own tags)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd

from src.board import columns as col
from src.board.aggregate import Board, is_counted
from src.board.speed import comparable_speed, speed_note
from src.core import schema
from src.core.paths import git_commit


@dataclass
class BoardMeta:
    """Everything a reader of a table needs to trust or reproduce it."""

    commit: str
    command: str
    tracking_uri: str
    selection: str
    metric: str
    higher_is_better: bool
    generated: str
    runs: dict[str, int] = field(default_factory=dict)
    measurement: list[str] = field(default_factory=list)
    parent_run_id: str | None = None
    analyses: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[str, str]]:
        """``(key, value)`` pairs in display order; ``measured`` may repeat."""
        direction = "higher is better" if self.higher_is_better else "lower is better"
        counts = ", ".join(f"{v} {k}" for k, v in self.runs.items())
        return [
            ("commit", self.commit),
            ("command", self.command),
            ("store", self.tracking_uri),
            ("selection", self.selection),
            ("ranked by", f"{self.metric} ({direction})"),
            ("runs", counts),
            ("generated", self.generated),
            *(("measured", line) for line in self.measurement),
            *(("analysis", line) for line in self.analyses),
        ]

    def lines(self) -> list[str]:
        """``key: value`` lines for table headers (csv comments, terminal caption)."""
        return [f"{key}: {value}" for key, value in self.items()]

    def to_dict(self) -> dict:
        return asdict(self)


def collect_meta(
    runs: pd.DataFrame,
    per_run: pd.DataFrame,
    *,
    command: str,
    tracking_uri: str,
    selection: str | Mapping[str, object],
    metric: str,
    higher_is_better: bool = True,
    parent_run_id: str | None = None,
    verdicts: str = "",
) -> BoardMeta:
    """Provenance of a board built from ``runs`` (as loaded) and ``per_run`` (what it used).

    Args:
        runs: Every loaded run, any status.
        per_run: The FINISHED runs the board aggregates (after de-duplication).
        command: The command that made the board, as typed.
        tracking_uri: The store read.
        selection: The filters applied, as text or ``{key: value}`` (None values left out).
        metric: Ranking metric.
        higher_is_better: Its direction.
        parent_run_id: The sweep's parent run, when one was selected.
        verdicts: How the verdicts were reached, in words (:func:`verdict_note`).
    """
    return BoardMeta(
        commit=git_commit(),
        command=command,
        tracking_uri=tracking_uri,
        selection=_selection_text(selection),
        metric=metric,
        higher_is_better=higher_is_better,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        runs=run_counts(runs, per_run),
        measurement=measurement_notes(per_run) + ([verdicts] if verdicts else []),
        parent_run_id=parent_run_id,
        analyses=analysis_notes(runs, per_run),
    )


def analysis_notes(runs: pd.DataFrame, per_run: pd.DataFrame) -> list[str]:
    """One line per finished analysis of a baseline in the selection (``src.sensitivity``),
    of the board's task: never ranked, listed so the reader finds its tables."""
    column, task = col.tag(schema.ANALYSIS), col.tag(schema.TASK)
    if column not in runs or runs.empty:
        return []
    tasks = set(per_run[col.TASK]) if col.TASK in per_run else set()
    found = runs[runs[column].notna() & (runs[col.STATUS] == "FINISHED")]
    found = found[found[task].isin(tasks)] if tasks and task in found else found
    return [
        f"{row[column]} of baseline run {row.get(col.tag(schema.BASELINE_RUN_ID))}: run "
        f"{row[col.RUN_ID]} ({schema.table_artifact(row[column])}); most sensitive: "
        f"{row.get(col.tag(schema.MOST_SENSITIVE)) or 'see the table'}"
        for _, row in found.iterrows()
    ]


def _selection_text(selection: str | Mapping[str, object]) -> str:
    if isinstance(selection, str):
        return selection or "all"
    return ", ".join(f"{k}={v}" for k, v in selection.items() if v is not None) or "all"


def run_counts(runs: pd.DataFrame, per_run: pd.DataFrame) -> dict[str, int]:
    """Runs used, and the training runs left out: superseded re-runs, FAILED (and any other
    status). Runs without a ``method`` tag (sweep parents) are not training runs."""
    column = col.tag(schema.METHOD)
    trained = runs[runs[column].notna()] if column in runs else runs.iloc[:0]
    status = trained[col.STATUS].value_counts()
    counted = int(is_counted(runs).sum())
    counts = {"used": len(per_run), "superseded (older re-runs)": counted - len(per_run)}
    counts.update({s.lower(): int(n) for s, n in status.items() if s != "FINISHED"})
    counts.setdefault("failed", 0)
    return counts


def latency_setup(runs: pd.DataFrame) -> str:
    """``tag=value`` of every latency-setup tag the runs carry; a mixed setup is listed, not
    hidden (``1,128 | 1,64``)."""
    setup = []
    for tag in schema.SETUP_TAGS:
        column = col.tag(tag)
        values = sorted(set(runs[column].dropna().astype(str))) if column in runs else []
        if values:
            setup.append(f"{tag}={' | '.join(values)}")
    return "; ".join(setup) if setup else "not tagged"


def verdict_note(board: Board) -> str:
    """The verdict rule and the error rate it carries, for a board's provenance: the interval
    methods, the one-sided alpha of each verdict, how many variants were judged against one
    baseline and how that family is adjusted, and what an interval conditions on."""
    if board.margin is None:
        return ""
    how = board.judgement
    loss = "decrease" if board.higher_is_better else "increase"
    methods = "; ".join(how.methods) or "each run's own interval"
    return (
        f"verdicts: one-sided alpha = {how.alpha:g} per variant (each end of a two-sided"
        f" {1 - 2 * how.alpha:.0%} interval); superior when the interval of the paired difference"
        f" from the own baseline lies above 0, non-inferior when any {loss} stays within the"
        f" margin {board.margin:g} (non-inferior but worse when it also lies below 0), inferior"
        f" when it lies wholly beyond, identical when no pair of units changed order (no"
        f" interval possible), else inconclusive; k = {how.k} variants judged per baseline:"
        f" column 'verdict' is unadjusted, column 'verdict (Holm)' holds the family-wise error"
        f" at {how.alpha:g} (Holm on the non-inferiority p-values); ranked by verdict, then"
        f" fidelity, then score; intervals: {methods}; resampling"
        f" {how.resampled or 'each run' + chr(39) + 's test units'}; they condition on the trained"
        f" models of the listed seeds (training randomness beyond them is not in the interval)"
    )


def measurement_notes(per_run: pd.DataFrame) -> list[str]:
    """How the numbers were measured, from the runs' tags."""
    return [
        "mean ± sample std (ddof=1) over n runs (folds x seeds); n per row and per metric",
        "rank and Pareto front: within one data set and one baseline (model and settings); the"
        " score is the baseline's mean plus the variant's mean paired difference from its own"
        " baseline (each run against the baseline of its fold and seed, evaluated in one"
        " process), so a variant on fewer folds is not ranked by the folds it lacks",
        "size ratio and speedups: each run against its own fp32 baseline (tag baseline_run_id);"
        " baseline = 1; "
        + (
            "the Pareto front uses these ratios, never absolute times from different runs"
            if comparable_speed(per_run)
            else "the Pareto front is over size only: speedups within one process do not compare"
            " across runs"
        ),
        speed_note(per_run),
        "p50 ms bs1: the baseline run's own time divided by the row's speedup",
        "latency setup (run tags): " + latency_setup(per_run),
    ]
