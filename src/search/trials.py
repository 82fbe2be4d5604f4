"""A search's trials as rows: what each launched trial ran, its run and figures
(:class:`Trial`), and the table the report, the front and the choice read
(:func:`trial_table`). No Optuna here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from hydra.core.utils import JobStatus

from src.search.scoring import Scoring


@dataclass
class Trial:
    """One finished (or failed) trial: what was asked, its run and its figures."""

    number: int
    overrides: list[str]
    run_id: str | None = None
    metrics: dict = field(default_factory=dict)
    method: dict = field(default_factory=dict)  # the method config as the run settled it
    error: str | None = None


def job_result(job_return: Any) -> tuple[str | None, dict, dict, str | None]:
    """(run id, metrics, settled method config, error) from a launcher's JobReturn of
    ``src.search``'s job."""
    if job_return.status != JobStatus.COMPLETED:
        return None, {}, {}, str(job_return._return_value).splitlines()[0][:300]
    value = job_return.return_value
    if not isinstance(value, dict):  # NaN: the job failed on bad input, its run is FAILED
        return None, {}, {}, "the trial failed on its input (see its run's error tag)"
    return value["run_id"], value["metrics"], value.get("method", {}), None


def looked_at(trials: list[Trial]) -> int:
    """Trials whose figures a search has read: the ``k`` of a test-based verdict's ``alpha/k``."""
    return max(1, sum(t.run_id is not None for t in trials))


def trial_table(trials: list[Trial], scoring: Scoring) -> pd.DataFrame:
    """One row per trial: its method and parameters, run, objectives, tuning figures and goals
    (and, only for a search that selects on test, each trial's verdict at ``alpha / k``)."""
    rows, k = [], looked_at(trials)
    for trial in trials:
        method = next(o.split("=", 1)[1] for o in trial.overrides if o.startswith("+method="))
        params = [o for o in trial.overrides if o.startswith("method.") or o.startswith("student.")]
        row = {
            "trial": trial.number,
            "method": method,
            "params": " ".join(params),
            "run_id": trial.run_id,
            "error": trial.error,
        }
        if trial.run_id is not None:
            row.update(scoring.objectives(trial.metrics))
            row["speedup_low"] = scoring.speedup_low(trial.metrics)
            row["speed_from"] = scoring.speed_from(trial.metrics)
            row.update(scoring.tuning_figures(trial.metrics))
            if scoring.on_test:
                row["test_change"] = scoring.change(trial.metrics)
                row["verdict"] = scoring.test_verdict(trial.metrics, k)
            unmet = scoring.unmet(trial.metrics, k)
            row["keeps_accuracy"] = not scoring.accuracy_unmet(trial.metrics, k)
            row["unmet_goals"] = "; ".join(unmet)
            row["meets_goals"] = not scoring.goals.empty() and not unmet
        rows.append(row)
    return pd.DataFrame(rows)
