"""The search as a Hydra app (``python -m src.search``, :mod:`src.search.__main__`): its job (one
trial), its sweep (what ``hydra/sweeper=search`` runs), and the config read as a
:class:`~src.search.loop.SearchSpec` and a :class:`~src.search.scoring.Scoring`.

1) Hydra opens one multirun (its parent run in MLflow) whose sweeper is Optuna's ask-and-tell
(``hydra/sweeper=search``); 2) each trial is an ordinary ``src.train`` job run by the sweep's
launcher, scored on what its run logged (:mod:`src.search.loop`, :mod:`src.search.scoring`);
3) the front is timed again in one pass of fresh processes, the chosen trial's test verdict is
computed once (the confirmatory look: nothing read the test split before it), and the trials,
their Pareto front and the chosen candidate as a ready command are logged to the parent run and
printed (:mod:`src.search.report`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from src.board.runs import PairedTables
from src.cli import entry
from src.cli.hydra_setup import register_configs
from src.cli.specs import run_spec
from src.core import schema
from src.core.errors import ConfigError
from src.pipeline import run
from src.search.loop import SearchLoop, SearchSpec
from src.search.report import build_report, log_report, print_report
from src.search.scoring import Goals, Scoring
from src.search.storage import StudyRef, open_storage, storage_url
from src.search.timing import BatchTimer, timing_spec
from src.tasks import create_task
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
register_configs()  # before Hydra composes: the registries' defaults as configs


@entry.guard
def job(cfg: DictConfig) -> dict:
    """One trial: a ``src.train`` job; its run id, metrics and method config as settled."""
    with open_dict(cfg):
        cfg.pop("search", None)  # the search's own settings are not the trial's params
    spec = run_spec(cfg)
    outcome = run(spec)
    return {
        "run_id": outcome.run_id,
        "metrics": dict(outcome.result.metrics),
        "method": spec.method.to_dict(),
    }


@entry.guard
def sweep(config: DictConfig, arguments: list[str], launcher) -> list:
    """The search (what ``hydra/sweeper=search`` runs): loop, report, log to the parent run."""
    if os.environ.get(schema.SWEEP_ERROR_ENV):  # no parent run: nothing may run
        raise ConfigError(os.environ[schema.SWEEP_ERROR_ENV])
    spec = search_spec(config)
    scoring = scoring_of(config, spec)
    base = [a for a in arguments if not a.startswith(("search.", "hydra"))]
    parent = os.environ.get(schema.PARENT_ENV)
    store = RunStore(config.logger.tracking_uri)
    timer = batch_timer(config, spec, scoring, store, parent)
    study = study_ref(spec, store, parent)
    loop = SearchLoop(spec, scoring, launcher.launch, arguments, timer, study)
    trials = loop.run()
    loop.retime_front()  # the front's speeds from the same fresh processes, before choosing
    report = build_report(trials, scoring, base, PairedTables(store=store))
    if parent:
        log_report(report, store, parent, Path(config.hydra.sweep.dir))
    print_report(report)
    return loop.trials


def study_ref(spec: SearchSpec, store: RunStore, parent: str | None) -> StudyRef:
    """The search's study: named on its parent run by the sweep callback (a rerun of the
    command finds the same name and parent), kept beside the tracking store's database."""
    name = store.get(parent).data.tags.get(schema.SEARCH_STUDY) if parent else None
    url = storage_url(store.uri, spec.storage) if name else None
    if name and url is None:
        log.warning(
            "search: the study lives in memory (a killed search restarts): the tracking store "
            "%s is no database this process reaches; search.storage=<database URL> names one",
            store.uri,
        )
    return StudyRef(open_storage(url), name, lambda run_id: dict(store.get(run_id).data.metrics))


def search_spec(config: DictConfig) -> SearchSpec:
    values = OmegaConf.to_container(config.search, resolve=True)
    try:
        return SearchSpec(**values)
    except TypeError as err:  # an unknown key
        raise ConfigError(
            f"search: {err}; its keys are {list(SearchSpec.__dataclass_fields__)}"
        ) from None


def batch_timer(
    config: DictConfig, spec: SearchSpec, scoring: Scoring, store: RunStore, parent: str | None
) -> BatchTimer | None:
    """The pass that times each batch (``search.timing``; null: none, in-run speed). It times
    batch 1, and the largest batch too where a goal reads it."""
    if spec.timing is None:
        return None
    sizes = [1]
    if scoring.goals.min_speedup_bsN is not None:
        sizes.append(max(int(b) for b in config.benchmark.batch_sizes))
    timing = timing_spec(dict(spec.timing), tuple(dict.fromkeys(sizes)), spec.seed)
    experiment = str(config.logger.experiment_name)
    return BatchTimer(store, timing, spec.runtime, parent, experiment)


def scoring_of(config: DictConfig, spec: SearchSpec) -> Scoring:
    """How trials are read: the task's primary metric, margin and direction, and the goals."""
    task = create_task(OmegaConf.to_container(config.task, resolve=True))
    metric = task.metric(task.primary)
    return Scoring(
        primary=task.primary,
        select_on=spec.select_on,
        runtime=spec.runtime,
        margin=metric.margin,
        higher_is_better=metric.higher_is_better,
        goals=Goals.parse(spec.goals, task.primary),
        paired=metric.paired,
    )
