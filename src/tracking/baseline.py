"""Find the fp32 baseline a compressed variant must be compared with.

A method run needs the baseline of the same model, data, fold and seed. It is found in MLflow as
the newest FINISHED run tagged ``method=baseline`` with the same ``baseline_key``, or named
explicitly with ``method.baseline_run_id``; otherwise the caller trains it once, as its own run.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from src.errors import UserError
from src.tracking.mlflow_run import resolve_tracking_uri


def find_baseline_run(tracking_uri: str, experiment: str, key: str) -> str | None:
    """Run id of the newest finished baseline with ``key``, or None."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=(
            f"tags.method = 'baseline' and tags.baseline_key = '{key}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def check_baseline_run(tracking_uri: str, run_id: str) -> str:
    """``method.baseline_run_id`` must name a finished baseline run."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    try:
        run = client.get_run(run_id)
    except Exception:  # MLflow raises its own exception types for unknown ids
        raise UserError(f"method.baseline_run_id={run_id} is not a run in {tracking_uri}") from None
    if run.info.status != "FINISHED" or run.data.tags.get("method") != "baseline":
        raise UserError(
            f"method.baseline_run_id={run_id} is not a FINISHED baseline run "
            f"(status {run.info.status}, method {run.data.tags.get('method')})"
        )
    return run_id
