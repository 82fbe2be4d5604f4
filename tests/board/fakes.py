"""Hand-built MLflow stores with runs shaped like ``src.train``'s, for leaderboard and
reproduce-table tests. Tags come from the run schema's own builder (``src.core.schema.run_tags``)
with the real tasks' metric specs, so a fake run carries the keys a real one does
(``tests/core/test_schema.py`` holds the two against each other).

    store = new_store(tmp_path)                   # empty SQLite store, in about 0.1 s
    base = store.run(method="baseline", fold=0, metrics={"test/auroc": 0.9, "size/mb": 1.0})
    store.run(method="dynamic", fold=0, baseline_run_id=base, settings={"dtype": "int8"},
              metrics={"test/auroc": 0.88, "size/ratio": 0.3})
    store, demo = demo_store(tmp_path)            # the known runs of :data:`BATTERY`/`DIGITS`
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from src.core import schema
from src.models import model_family
from src.tasks import TASKS

# What src.measure.environment tags on every run, baseline included.
LATENCY_TAGS = {
    schema.LATENCY_THREADS: "2",
    schema.LATENCY_BATCH_SIZES: "1,128",
    schema.LATENCY_WARMUP: "5",
    schema.LATENCY_ITERS: "20",
    schema.LATENCY_ROUNDS: "3",
    schema.LATENCY_BLOCK_SECONDS: "1.0",
    schema.LATENCY_CALLS: "bs1=3x20,bs128=3x5",
    schema.CPU_MODEL: "Fake CPU @ 1.0GHz",
    schema.CPU_ISA: "avx2",
    schema.TORCH_VERSION: "2.13.0+cpu",
    schema.QUANTIZED_ENGINE: "x86",
}
_TEMPLATE: list[Path] = []  # one migrated empty store per process, copied for each new store
_CLOCK = itertools.count(1_700_000_000_000, 1000)  # start times in ms: later runs are newer


@dataclass
class FakeStore:
    """A SQLite store in ``root`` (artifacts in ``root/artifacts``) and a client on it."""

    root: Path
    uri: str
    client: MlflowClient
    experiments: dict[str, str] = field(default_factory=dict)

    def experiment(self, name: str) -> str:
        """Id of experiment ``name``, created with its artifacts inside ``root``."""
        if name not in self.experiments:
            location = (self.root / "artifacts" / name).as_uri()
            self.experiments[name] = self.client.create_experiment(name, location)
        return self.experiments[name]

    def run(
        self,
        *,
        method: str = "baseline",
        model: str = "dyad",
        data: str = "battery",
        task: str = "anomaly",
        fold: int | str = 0,
        seed: int = 0,
        data_variant: str = "brand3",
        data_fingerprint: str | None = None,
        metrics: dict[str, float] | None = None,
        settings: dict[str, object] | None = None,
        params: dict[str, object] | None = None,
        tags: dict[str, object] | None = None,
        status: str = "FINISHED",
        baseline_run_id: str | None = None,
        parent_run_id: str | None = None,
        sweep_id: str | None = None,
        experiment: str | None = None,
        units: pd.DataFrame | None = None,
    ) -> str:
        """Log one run the way ``src.train`` does and return its id.

        ``settings`` become ``method.*`` params (with ``method.name`` and
        ``method.baseline_run_id`` added for method runs); ``params`` are logged as given. A
        sweep's child passes ``parent_run_id`` and ``sweep_id`` (``src.cli.sweep``). ``tags``
        are added last (``baseline_key`` among them, when a test needs a real one). ``units``
        (unit, label, baseline, variant) is logged as the run's paired per-unit table.
        """
        identity = schema.RunIdentity(
            method, model, data, data_variant, task, seed, str(fold), model_family(model)
        )
        task_class = TASKS.get(task)
        run_tags = schema.run_tags(
            identity,
            primary_metric=task_class.primary,
            metric_specs=task_class.metrics,
            baseline_key=f"key-{model}-{data}-{data_variant}-{fold}-{seed}",
            baseline_run_id=baseline_run_id,
            parent_run_id=parent_run_id,
            sweep_id=sweep_id,
            extra=LATENCY_TAGS,
        )
        run_tags[schema.RUN_NAME] = f"{method}-{model}"
        run_tags[schema.DATA_FINGERPRINT] = data_fingerprint or f"{data}-{data_variant}-content"
        run_tags.update(tags or {})
        run_params = {"data.fold": fold, "seed": seed, **(params or {})}
        if method != schema.BASELINE:
            run_params.update({"method.name": method, "method.baseline_run_id": baseline_run_id})
        run_params.update({f"method.{k}": v for k, v in (settings or {}).items()})
        run_id = self._log(experiment or data, run_tags, run_params, metrics or {}, status)
        if units is not None:
            self.client.log_text(
                run_id, units.to_csv(index=False), f"tables/{schema.PAIRED_TABLE}.csv"
            )
        return run_id

    def sweep_parent(self, sweep_id: str, experiment: str = "battery") -> str:
        """A sweep's parent run, tagged ``sweep_id`` (children pass ``parent_run_id``)."""
        tags = {schema.SWEEP_ID: sweep_id, schema.RUN_NAME: f"sweep-{sweep_id}"}
        return self._log(experiment, tags, {}, {}, "FINISHED")

    def _log(self, experiment, tags, params, metrics, status) -> str:
        start = next(_CLOCK)
        tags = {k: str(v) for k, v in tags.items() if v is not None}
        run = self.client.create_run(self.experiment(experiment), start_time=start, tags=tags)
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), start, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag("mlflow.user", "fake")],
        )
        self.client.set_terminated(run_id, status, end_time=start + 500)
        return run_id


def new_store(directory: Path) -> FakeStore:
    """An empty store at ``directory/mlflow.db`` (a copy of an already migrated one: creating a
    SQLite store runs the migrations, about 2 s)."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "mlflow.db"
    shutil.copyfile(_template(), db)
    uri = f"sqlite:///{db}"
    return FakeStore(directory, uri, MlflowClient(uri))


def _template() -> Path:
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="fake-mlflow-"))
        atexit.register(shutil.rmtree, folder, True)
        client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
        client.search_experiments()  # runs the migrations
        _TEMPLATE.append(folder / "mlflow.db")
    return _TEMPLATE[0]


# The demo store: known per-fold values. Battery: dyad, data variant brand3, folds 0-2, seed 0.
# Pareto over (auroc max, latency min, size min): baseline (best auroc), dynamic, static are on
# the front; fp16 is dominated by dynamic (lower auroc, slower, bigger).
BATTERY = {
    "baseline": {
        "test/auroc": [0.90, 0.80, 0.85],
        "latency/ms_p50_bs1": [2.0, 2.2, 2.4],
        "size/mb": [1.0, 1.0, 1.0],
        "test/recall": [0.8, 0.7, 0.75],
    },
    "dynamic": {
        "test/auroc": [0.88, 0.79, 0.85],
        "latency/ms_p50_bs1": [1.0, 1.1, 1.2],
        "size/mb": [0.3, 0.3, 0.3],
        "size/ratio": [0.3, 0.3, 0.3],
        "latency/speedup_bs1": [2.0, 2.1, 2.2],
        "latency/speedup_bsN": [1.5, 1.6, 1.7],
        "test/recall": [0.8, 0.6, 0.7],
    },
    "static": {
        "test/auroc": [0.80, 0.78, 0.82],
        "latency/ms_p50_bs1": [0.8, 0.9, 1.0],
        "size/mb": [0.25, 0.25, 0.25],
        "size/ratio": [0.25, 0.25, 0.25],
        "latency/speedup_bs1": [2.5, 2.4, 2.4],
        "latency/speedup_bsN": [2.0, 2.0, 2.0],
        "test/recall": [0.7, 0.7, 0.7],
    },
    # no size/ratio logged: the board derives it from the baseline run's size/mb (0.5 / 1.0)
    "fp16": {
        "test/auroc": [0.84, 0.82, 0.83],
        "latency/ms_p50_bs1": [1.1, 1.2, 1.3],
        "size/mb": [0.5, 0.5, 0.5],
        "latency/speedup_bs1": [1.8, 1.8, 1.9],
        "test/recall": [0.7, 0.7, 0.7],
    },
}
SETTINGS = {"dynamic": {"dtype": "int8"}, "static": {"observer": "histogram"}, "fp16": {}}
# Digits: cnn_tiny, fold 'none', seeds 0 and 1.
DIGITS = {
    "baseline": {
        "test/accuracy": [0.95, 0.97],
        "latency/ms_p50_bs1": [0.5, 0.6],
        "size/mb": [0.2, 0.2],
    },
    "dynamic": {
        "test/accuracy": [0.94, 0.96],
        "latency/ms_p50_bs1": [0.4, 0.5],
        "size/mb": [0.06, 0.06],
        "size/ratio": [0.3, 0.3],
        "latency/speedup_bs1": [1.2, 1.3],
    },
}


@dataclass
class Demo:
    """Ids of the demo store's runs."""

    sweep_parent: str  # sweep "sweep-1": dynamic and static are its children, baselines are not
    runs: dict[str, list[str]] = field(default_factory=dict)  # battery method -> ids by fold
    failed: list[str] = field(default_factory=list)  # two FAILED qat runs (folds 0, 1)

    @property
    def baselines(self) -> list[str]:
        return self.runs["baseline"]


def demo_store(directory: Path) -> tuple[FakeStore, Demo]:
    """A store with :data:`BATTERY` (plus 2 FAILED qat runs, a sweep) and :data:`DIGITS`."""
    store = new_store(directory)
    demo = Demo(sweep_parent=store.sweep_parent("sweep-1"))
    sweep = {"parent_run_id": demo.sweep_parent, "sweep_id": "sweep-1"}
    for method, values in BATTERY.items():  # baseline first: the others name its runs
        demo.runs[method] = [
            store.run(
                method=method,
                fold=fold,
                metrics=_delta({k: v[fold] for k, v in values.items()}, method, fold),
                settings=SETTINGS.get(method),
                params={"model.hidden_size": 64},
                baseline_run_id=None if method == "baseline" else demo.baselines[fold],
                **(sweep if method in ("dynamic", "static") else {}),
            )
            for fold in range(3)
        ]
    demo.failed = [
        store.run(method="qat", fold=fold, status="FAILED", baseline_run_id=demo.baselines[fold])
        for fold in range(2)
    ]
    _digits(store)
    return store, demo


def _delta(metrics: dict[str, float], method: str, fold: int) -> dict[str, float]:
    """Add ``delta/auroc`` against the fold's baseline, as ``src.train`` logs it."""
    if method != "baseline":
        metrics["delta/auroc"] = metrics["test/auroc"] - BATTERY["baseline"]["test/auroc"][fold]
    return metrics


def _digits(store: FakeStore) -> None:
    common = {"model": "cnn_tiny", "data": "digits", "task": "classification", "data_variant": ""}
    for seed in range(2):
        base = store.run(
            method="baseline",
            fold="none",
            seed=seed,
            metrics={k: v[seed] for k, v in DIGITS["baseline"].items()},
            **common,
        )
        store.run(
            method="dynamic",
            fold="none",
            seed=seed,
            metrics={k: v[seed] for k, v in DIGITS["dynamic"].items()},
            settings={"dtype": "int8"},
            baseline_run_id=base,
            **common,
        )
