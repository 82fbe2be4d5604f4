"""The search loop behind ``python -m src.search``: Optuna asks, the sweep's launcher runs.

Optuna (multi-objective: TPE, NSGA-II or random) proposes a method and its parameters from
``search.space``; each batch of ``search.parallel`` trials is handed to the Hydra launcher of the
sweep (basic, joblib, submitit, SLURM, Ray: whatever ``hydra/launcher`` names), so every trial is
an ordinary ``src.train`` job and a child run of the sweep's parent. A trial's objectives are read
from what its run logged (:mod:`src.search.scoring`); the loop stops after ``search.trials`` trials,
after ``search.timeout`` seconds, or as soon as a trial meets every goal (goals read the tuning
split and label-free figures only, unless ``search.select_on=test``). Why not
hydra-optuna-sweeper: its last release (1.2.0) pins ``optuna<3``; this drives
Optuna 5 directly with its ask-and-tell interface.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

from src.core.errors import ConfigError
from src.search.scoring import DIRECTIONS, Scoring, front_of
from src.search.storage import StudyRef, record, restore
from src.search.timing import check_timing
from src.search.trials import Trial, job_result, looked_at, trial_table

log = logging.getLogger(__name__)
SAMPLERS = ("tpe", "nsga2", "random")
MAX_REPEATS = 50  # proposals of tried candidates in a row before the space counts as spent


@dataclass(frozen=True)
class SearchSpec:
    """``search.*``: the budget, the sampler, the split that selects, the goals, the space.

    Attributes:
        trials: At most this many trials.
        timeout: No new batch after this many seconds; None: no limit.
        parallel: Trials per launch (a parallel launcher runs them side by side).
        sampler: ``tpe`` (multivariate, conditional), ``nsga2`` or ``random``.
        startup: TPE's random trials before it models the space; None: a third of ``trials``
            (2 to 10): Optuna's fixed 10 would make a 12-trial search nearly random sampling.
        seed: The sampler's seed.
        select_on: ``tuning`` or ``test``: the split whose metric change is an objective.
        runtime: The runtime whose batch-1 speedup is an objective (``eager``, ``onnxruntime``,
            ``compile``); each trial is deployed to it.
        goals: Olive-style goals (:class:`src.search.scoring.Goals`).
        space: ``{method: {key: [choices] | {low, high, log?, step?}}}``, keys nested as in
            the train config (``{method: {sparsity: {low: 0.3, high: 0.9}}}`` is the override
            ``method.sparsity``), so one bound is one override:
            ``search.space.prune.method.sparsity.high=0.8``.
        methods: Search only these methods of the space; None: all of them.
        timing: How each batch's trials are timed in fresh processes for the ``speedup``
            objective (:mod:`src.search.timing`: processes, rounds, threads, warmup, iters,
            block_seconds); None: each trial's own in-run figure (one process's draw).
        resume: ``auto``: rerunning the command continues its study (same parent run, every
            finished trial kept, none rerun); ``never``: a new study.
        storage: Where the study lives (:mod:`src.search.storage`): None, beside the tracking
            store's database; a database URL; or ``memory`` (a search that cannot resume).
        stop_at_goals: Stop at the first trial that meets every goal; False: run the whole
            budget (still marking the trials that meet them; what a benchmark compares).
    """

    trials: int = 20
    timeout: float | None = None
    parallel: int = 1
    sampler: str = "tpe"
    startup: int | None = None
    seed: int = 0
    select_on: str = "tuning"
    runtime: str = "eager"
    goals: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)
    methods: list | None = None
    timing: dict | None = None
    resume: str = "auto"
    storage: str | None = None
    stop_at_goals: bool = True

    def __post_init__(self) -> None:
        if self.resume not in ("auto", "never"):
            raise ConfigError(f"search.resume={self.resume!r}; choose auto or never")
        if self.startup is not None and (isinstance(self.startup, bool) or int(self.startup) < 1):
            raise ConfigError(f"search.startup={self.startup!r} must be an int >= 1 or null")
        for key in ("trials", "parallel"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"search.{key}={value!r} must be an int >= 1")
        if self.timeout is not None and not float(self.timeout) > 0:
            raise ConfigError(f"search.timeout={self.timeout!r} must be seconds > 0, or null")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"search.sampler={self.sampler!r}; choose one of {SAMPLERS}")
        if self.methods is not None:
            unknown = sorted(set(self.methods) - set(self.space))
            if unknown or not self.methods:
                raise ConfigError(
                    f"search.methods={self.methods} must name methods of "
                    f"search.space: {sorted(self.space)}"
                )
            object.__setattr__(self, "space", {m: self.space[m] for m in self.methods})
        if self.timing is not None:
            check_timing(dict(self.timing))
        if not self.space:
            raise ConfigError("search.space is empty; name at least one method, e.g. {dynamic: {}}")
        flat = {m: distributions(params, f"search.space.{m}") for m, params in self.space.items()}
        object.__setattr__(self, "space", flat)


def _is_distribution(value: Any) -> bool:
    return isinstance(value, list) or (isinstance(value, dict) and {"low", "high"} <= set(value))


def distributions(params: dict | None, where: str, prefix: str = "") -> dict[str, Any]:
    """``{method: {sparsity: {low, high}}}`` -> ``{"method.sparsity": {low, high}}``: the
    nested keys of a method's space as the overrides they set, each distribution checked."""
    flat: dict[str, Any] = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if _is_distribution(value):
            bad = not value if isinstance(value, list) else not value["low"] < value["high"]
            if bad:
                raise ConfigError(
                    f"{where}.{name}={value!r}: give a non-empty list of choices "
                    "or {low, high[, log, step]} with low < high"
                )
            flat[name] = value
        elif isinstance(value, dict):
            flat.update(distributions(value, where, f"{name}."))
        else:
            raise ConfigError(
                f"{where}.{name}={value!r}: give a list of choices or {{low, high[, log, step]}}"
            )
    return flat


def make_sampler(spec: SearchSpec, done: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler; ``done``: trials the study already holds (a resumed study's sampler is
    seeded past them, or a seeded random sampler would propose its first trials again)."""
    seed = spec.seed + done
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # multivariate + group: the joint TPE over each method's own (conditional) parameters
    with warnings.catch_warnings():  # both are "experimental" in Optuna 5, and what fits here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        startup = spec.startup or min(10, max(2, spec.trials // 3))
        return optuna.samplers.TPESampler(
            n_startup_trials=startup, seed=seed, multivariate=True, group=True
        )


def suggest(trial: optuna.Trial, space: dict) -> list[str]:
    """The trial's method and parameters as ``src.train`` overrides."""
    method = trial.suggest_categorical("method", list(space))
    overrides = [f"+method={method}"]
    for key, dist in (space[method] or {}).items():
        name = f"{method}:{key}"  # conditional: each method's parameters are its own
        if isinstance(dist, list):
            value = trial.suggest_categorical(name, dist)
        elif all(isinstance(dist[k], int) for k in ("low", "high")) and not dist.get("log"):
            value = trial.suggest_int(name, dist["low"], dist["high"], step=dist.get("step", 1))
        else:
            low, high = float(dist["low"]), float(dist["high"])
            value = trial.suggest_float(
                name, low, high, log=bool(dist.get("log")), step=dist.get("step")
            )
        overrides.append(f"{key}={override_value(value)}")
    return overrides


def override_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class SearchLoop:
    """Ask a batch, launch it, tell Optuna what the runs logged; until a budget or the goals."""

    def __init__(
        self,
        spec: SearchSpec,
        scoring: Scoring,
        launch,
        base: list[str],
        time_batch=None,
        study: StudyRef | None = None,
    ) -> None:
        """``launch(list of override lists, first job index) -> JobReturns`` runs a batch;
        ``base``: the command line's own overrides, given to every trial; ``time_batch(run
        ids) -> {run id: timing metrics}`` times a finished batch in fresh processes
        (:class:`src.search.timing.BatchTimer`; None: the trials' in-run speed); ``study``:
        the stored study to continue (None: a new one in memory)."""
        self.spec, self.scoring, self.launch, self.base = spec, scoring, launch, base
        self.time_batch = time_batch
        self.study = self._open(study or StudyRef())

    def _open(self, ref: StudyRef) -> optuna.Study:
        """The study, new or stored; a stored one's launched trials back in :attr:`trials`."""
        directions = [{"max": "maximize", "min": "minimize"}[d] for d in DIRECTIONS.values()]
        try:
            study = optuna.create_study(
                storage=ref.storage,
                study_name=ref.name,
                directions=directions,
                load_if_exists=True,
            )
        except ValueError as err:  # a study of this name with other objectives
            raise ConfigError(
                f"search: study {ref.name} cannot be continued ({err}); pass search.resume=never"
            ) from None
        self.trials: list[Trial]
        self.told: dict[tuple, list[float] | None]  # a launched candidate's objectives
        self.trials, self.told = restore(study, ref.read_metrics)
        study.sampler = make_sampler(self.spec, len(study.trials))
        if self.trials:
            log.info("search: resuming study %s at %d trials", ref.name, len(self.trials))
        return study

    def run(self) -> list[Trial]:
        if self.spec.stop_at_goals and any(self._meets(t) for t in self.trials):
            return self.trials  # a resumed search that had ended
        started = time.monotonic()
        while len(self.trials) < self.spec.trials:
            if self.spec.timeout is not None and time.monotonic() - started > self.spec.timeout:
                log.info("search: timeout after %d trials", len(self.trials))
                break
            asked = self._ask(min(self.spec.parallel, self.spec.trials - len(self.trials)))
            if not asked:
                log.info("search: the sampler repeats tried candidates only; the space is spent")
                break
            if self._launch(asked) and self.spec.stop_at_goals:
                break
        return self.trials

    def _ask(self, size: int) -> list[tuple[optuna.trial.Trial, list[str]]]:
        """Up to ``size`` new candidates. One the sampler proposes again (a recipe without
        parameters, say) is not run twice: Optuna is told its earlier values instead."""
        asked, repeats = [], 0
        while len(asked) < size and repeats < MAX_REPEATS:
            trial = self.study.ask()
            overrides = [*self.base, *suggest(trial, self.spec.space), *self._runtimes()]
            key = tuple(overrides)
            if key in self.told or key in {tuple(o) for _, o in asked}:
                self._tell(trial, self.told.get(key))  # in this batch: told as failed once
                repeats += 1
                continue
            asked.append((trial, overrides))
        return asked

    def _launch(self, asked: list[tuple[optuna.trial.Trial, list[str]]]) -> bool:
        """Run one batch; True when a trial met every goal."""
        returns = self.launch([overrides for _, overrides in asked], len(self.trials))
        batch = [
            Trial(ask.number, overrides, *job_result(job_return))
            for (ask, overrides), job_return in zip(asked, returns, strict=True)
        ]
        if self.time_batch is not None:  # scored on fresh processes, like the board
            timed = self.time_batch([t.run_id for t in batch if t.run_id])
            for trial in batch:
                trial.metrics.update(timed.get(trial.run_id, {}))
        met = False
        for (ask, overrides), trial in zip(asked, batch, strict=True):
            self.trials.append(trial)
            record(ask, trial)
            values = self.scoring.objectives(trial.metrics) if trial.run_id else {}
            finite = values and all(math.isfinite(v) for v in values.values())
            self.told[tuple(overrides)] = [values[k] for k in DIRECTIONS] if finite else None
            self._tell(ask, self.told[tuple(overrides)])
            met = met or self._meets(trial)
        return met

    def _tell(self, trial: optuna.trial.Trial, values: list[float] | None) -> None:
        if values is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, values)

    def _meets(self, trial: Trial) -> bool:
        if trial.run_id is None or self.scoring.goals.empty():
            return False
        return not self.scoring.unmet(trial.metrics, k=looked_at(self.trials))

    def retime_front(self) -> list[str]:
        """The front's trials timed again, together with their baselines, in one pass of fresh
        processes (each batch's pass compared a trial only with its own batch): the choice then
        compares them on the same processes. Returns the run ids timed (none without a timer)."""
        if self.time_batch is None:
            return []
        table = trial_table(self.trials, self.scoring)
        if "run_id" not in table:
            return []
        done = table[table.run_id.notna()]
        front = done[front_of(done).astype(bool)].run_id.tolist() if len(done) else []
        if len(front) < 2:
            return []
        timed = self.time_batch(front)
        for trial in self.trials:
            trial.metrics.update(timed.get(trial.run_id, {}))
        return front if timed else []

    def _runtimes(self) -> list[str]:
        runtimes = ["eager"] if self.spec.runtime == "eager" else ["eager", self.spec.runtime]
        return [f"benchmark.runtimes=[{','.join(runtimes)}]"]
