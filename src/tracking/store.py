"""One API onto the MLflow store: open it, find runs, search them, create them.

Training (find the baseline of a config), the leaderboard (search with filters), reproduce (the
newest run of each method of a config), the sweep callback and the benchmarks all query MLflow
through :class:`RunStore`, so a query is written, and quoted, once.

Example:
    >>> store = RunStore.open()                       # MLFLOW_TRACKING_URI or mlruns/mlflow.db
    >>> run = store.find(method="baseline", baseline_key=key)
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.tracking import MlflowClient

from src.core import schema
from src.core.errors import UserError
from src.core.paths import default_store_uri
from src.tracking.claims import PREFIX as CLAIMS
from src.tracking.claims import claim
from src.tracking.health import DENIED, check_store, denied

# MLflow draws a progress bar per downloaded file; a board reads one small table per run, which
# buried the verdict table under dozens of bars. A user's own setting wins.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

FINISHED = "FINISHED"
_PAGE = 1000


class TrackingConfigError(UserError):
    """The tracking URI cannot work; the message says what to set."""


def resolve_tracking_uri(uri: str) -> str:
    """Validate the store URI. MLflow 3 refuses file stores, so refuse them here, clearly."""
    uri = str(uri).strip()
    if not uri:
        raise TrackingConfigError("logger.tracking_uri is empty; use sqlite:///<dir>/mlflow.db")
    if uri.startswith("file:") or "://" not in uri:
        raise TrackingConfigError(
            f"logger.tracking_uri={uri!r} is a file store, which MLflow 3 refuses; use "
            f"sqlite:///<dir>/mlflow.db or an http(s):// server (or set MLFLOW_TRACKING_URI)"
        )
    return uri


def clause(column: str, value: object) -> str:
    """One equality of MLflow's filter grammar: ``tags.`sweep_id` = 'x'``."""
    kind, _, name = column.partition(".")
    return f"{kind}.`{name}` = '{value}'"


def tag_clause(tag: str, value: object) -> str:
    """:func:`clause` on run tag ``tag`` (a name of :mod:`src.core.schema`)."""
    return clause(f"tags.{tag}", value)


class RunStore:
    """An MLflow tracking store (a SQLite file or a server).

    Args:
        uri: The store; None: ``MLFLOW_TRACKING_URI`` or the project's SQLite file.
        create: Create a missing SQLite store (writers). Readers pass False, so that a wrong
            path is an error instead of a new empty store.

    Raises:
        TrackingConfigError: A file store or an empty URI.
        UserError: ``create=False`` and no SQLite file at the URI.
        StoreUnreachable: The store does not answer, or a SQLite file cannot be written.
    """

    def __init__(self, uri: str | None = None, create: bool = True) -> None:
        self.uri = resolve_tracking_uri(uri or default_store_uri())
        path = self._sqlite_path
        if path is not None and not create and not path.is_file():
            raise UserError(
                f"no MLflow store at {self.uri}: train first (python -m src.train) or point "
                "tracking_uri (or MLFLOW_TRACKING_URI) at your store"
            )
        check_store(self.uri, write=create)  # seconds, one line; MLflow would retry for minutes
        self._artifact_uris: dict[str, str] = {}  # run id -> artifact URI, of the runs seen
        with self.locked():  # MLflow creates or migrates a SQLite schema on first use
            self.client = MlflowClient(tracking_uri=self.uri)
            self.client.search_experiments(max_results=1)

    @classmethod
    def open(cls, uri: str | None = None) -> RunStore:
        """An existing store, for reading (see ``create``)."""
        return cls(uri, create=False)

    @property
    def _sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        return Path(self.uri.removeprefix(prefix)) if self.uri.startswith(prefix) else None

    # ---- experiments ----------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the project's lock on a SQLite store (``<store>.lock``), across processes:
        parallel first runs would race on creating the schema or an experiment. A server store
        (shared by machines that share no lock file) is not locked here; what must be one at a
        time there is a :meth:`claim`."""
        path = self._sqlite_path
        if path is None:
            yield
            return
        with path.with_suffix(".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created once (under the store's lock; on a server, a job
        that loses the race to create it takes the winner's), marked for model training
        (:data:`src.core.schema.EXPERIMENT_KIND`; one created before is marked now)."""
        with self.locked():
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                if schema.EXPERIMENT_KIND not in found.tags:
                    try:
                        self._mark_kind(found.experiment_id)
                    except MlflowException as err:  # a reader on a server: left unmarked
                        if err.error_code not in DENIED:
                            raise
                return found.experiment_id
            kind = {schema.EXPERIMENT_KIND: schema.MODEL_TRAINING}
            try:
                return self.client.create_experiment(name, self._artifact_root(), tags=kind)
            except MlflowException as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return self.client.get_experiment_by_name(name).experiment_id

    def _mark_kind(self, experiment_id: str) -> None:
        self.client.set_experiment_tag(experiment_id, schema.EXPERIMENT_KIND, schema.MODEL_TRAINING)

    def check_writable(self, experiment: str) -> None:
        """On a server (which may control access), refuse in one line, before any work, a user
        who may not write to ``experiment``: its kind tag is written again, unchanged."""
        if not self.uri.startswith(("http://", "https://")):
            return
        with self._writing(experiment):
            self._mark_kind(self.experiment_id(experiment))

    @contextmanager
    def _writing(self, experiment: str) -> Iterator[None]:
        """A server's refusal to let this user write to ``experiment``, as one line."""
        try:
            yield
        except MlflowException as err:
            if err.error_code not in DENIED:
                raise
            raise denied(self.uri, experiment, err) from None

    def claim(self, name: str, timeout_s: float) -> AbstractContextManager[float]:
        """Hold the store-wide claim ``name`` (:func:`src.tracking.claims.claim`): one job at a
        time, on any machine that reaches the store."""
        return claim(self.client, name, timeout_s)

    def experiment_ids(self, name: str | None = None) -> list[str]:
        """Ids of every active experiment, or of ``name`` (an unknown name is an error)."""
        if name is None:
            return [e.experiment_id for e in self._experiments()]
        found = self.client.get_experiment_by_name(name)
        if found is None:
            known = sorted(e.name for e in self._experiments())
            raise UserError(f"experiment_name={name!r} is not in the store; choose from {known}")
        return [found.experiment_id]

    def _experiments(self) -> list:
        """The active experiments, less the claims (:mod:`src.tracking.claims`)."""
        active = self.client.search_experiments(ViewType.ACTIVE_ONLY)
        return [e for e in active if not e.name.startswith(CLAIMS)]

    def experiment_name(self, experiment_id: str) -> str:
        return self.client.get_experiment(experiment_id).name

    def _artifact_root(self) -> str | None:
        """Beside the SQLite file (``mlruns/artifacts``): the store is one self-contained folder."""
        path = self._sqlite_path
        return (path.parent / "artifacts").resolve().as_uri() if path is not None else None

    # ---- queries --------------------------------------------------------------------------
    def search(
        self,
        clauses: Iterable[str] = (),
        experiment: str | None = None,
        order_by: list[str] | None = None,
        max_results: int | None = None,
    ) -> list[Run]:
        """Runs matching every clause (see :func:`clause`), all pages.

        Raises:
            UserError: ``experiment`` is named but not in the store.
        """
        runs: list[Run] = []
        for page in self.pages(clauses, experiment, order_by, max_results=max_results):
            runs.extend(page)
        return runs

    def pages(
        self,
        clauses: Iterable[str] = (),
        experiment: str | None = None,
        order_by: list[str] | None = None,
        page_size: int = _PAGE,
        max_results: int | None = None,
    ) -> Iterator[list[Run]]:
        """The runs of :meth:`search` a page at a time, so a reader that keeps only what it
        needs of each page holds one page of MLflow entities, not the whole store."""
        experiments = self.experiment_ids(experiment)
        filter_string, seen, token = " and ".join(clauses), 0, None
        while experiments:
            size = min(page_size, max_results - seen) if max_results else page_size
            page = self.client.search_runs(
                experiments, filter_string, max_results=size, order_by=order_by, page_token=token
            )
            seen, token = seen + len(page), page.token
            self._artifact_uris.update((r.info.run_id, r.info.artifact_uri) for r in page)
            yield list(page)
            if not token or (max_results and seen >= max_results):
                return

    def find(
        self,
        experiment: str | None = None,
        status: str | None = FINISHED,
        **tags: object,
    ) -> Run | None:
        """The newest run (of ``status``) whose tags equal ``tags``, or None.

        Example:
            >>> store.find("battery", method="baseline", baseline_key=key)
        """
        if experiment is not None and self.client.get_experiment_by_name(experiment) is None:
            return None
        clauses = [tag_clause(k, v) for k, v in tags.items()]
        if status is not None:
            clauses.append(f"attributes.status = '{status}'")
        runs = self.search(clauses, experiment, ["attributes.start_time DESC"], max_results=1)
        return runs[0] if runs else None

    def newest_by_method(self, baseline_key: str, methods: Iterable[str]) -> dict[str, Run]:
        """The newest FINISHED run of each of ``methods`` among the runs of ``baseline_key``."""
        found: dict[str, Run] = {}
        for method in methods:
            run = self.find(method=method, baseline_key=baseline_key)
            if run is not None:
                found[method] = run
        return found

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; an unknown id is a UserError naming the store."""
        try:
            return self.client.get_run(run_id)
        except Exception:  # MLflow raises its own exception types for unknown ids
            raise UserError(f"run {run_id} is not in {self.uri}") from None

    def baseline_run(self, run_id: str) -> Run:
        """``run_id``, which must be a FINISHED fp32 baseline run."""
        run = self.get(run_id)
        method = run.data.tags.get(schema.METHOD)
        if run.info.status != FINISHED or method != schema.BASELINE:
            raise UserError(
                f"run {run_id} is not a FINISHED baseline run (status {run.info.status}, "
                f"method {method})"
            )
        return run

    def sweep_parent(self, sweep_id: str, running: bool = False) -> str:
        """Run id of the parent run of sweep ``sweep_id`` (tagged ``sweep_id``, no parent);
        ``running``: the open one (a job asking for its sweep's parent)."""
        clauses = [tag_clause(schema.SWEEP_ID, sweep_id)]
        if running:
            clauses.append(f"attributes.status = '{schema.RUNNING}'")
        runs = self.search(clauses)
        parents = [r.info.run_id for r in runs if schema.PARENT_RUN_ID not in r.data.tags]
        if len(parents) != 1:
            found = "no run" if not parents else f"{len(parents)} runs ({', '.join(parents)})"
            raise UserError(
                f"sweep_id={sweep_id}: {found} tagged sweep_id={sweep_id} without a parent in "
                f"{self.uri}; pass parent_run_id=<run id> instead"
            )
        return parents[0]

    # ---- writing --------------------------------------------------------------------------
    def create_run(self, experiment: str, run_name: str, tags: dict) -> str:
        """A new RUNNING run in ``experiment`` (created if missing); its id."""
        with self._writing(experiment):
            run = self.client.create_run(
                self.experiment_id(experiment),
                run_name=run_name,
                tags={k: str(v) for k, v in tags.items()},
            )
        return run.info.run_id

    def log_artifact(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def download(self, run_id: str, artifact: str, destination: str | Path) -> str:
        """Local path of ``artifact`` of run ``run_id``, downloaded into ``destination``."""
        return self.client.download_artifacts(run_id, artifact, str(destination))

    def has_artifact(self, run_id: str, artifact: str) -> bool:
        """Whether run ``run_id`` logged ``artifact`` (``folder/file``)."""
        folder = artifact.rpartition("/")[0] or None
        return artifact in {a.path for a in self.client.list_artifacts(run_id, folder)}

    def read_table(
        self, run_id: str, name: str, folder: str = schema.TABLES_DIR
    ) -> pd.DataFrame | None:
        """The ``<folder>/<name>.csv`` table a run logged (``TrackedRun.log_table``), or None
        when it has none; the ``unit`` column stays text (vehicle ids, image indices).

        Read from the run's artifact location directly (known from the search that found the
        run), in place when it is a local folder: MLflow's ``runs:/`` path would load the whole
        run from the store twice per call, and a board reads hundreds of tables."""
        artifact = f"{folder}/{name}.csv"  # schema.table_artifact(name) in the default folder
        uri = self._artifact_uris.get(run_id) or self.get(run_id).info.artifact_uri
        repository = get_artifact_repository(uri, tracking_uri=self.uri)
        if artifact not in {a.path for a in repository.list_artifacts(folder)}:
            return None
        if isinstance(repository, LocalArtifactRepository):  # its path: no copy, no thread pool
            return pd.read_csv(repository.download_artifacts(artifact), dtype={"unit": str})
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_csv(repository.download_artifacts(artifact, tmp), dtype={"unit": str})
