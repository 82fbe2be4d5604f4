"""Per-layer sensitivity of a baseline (``python -m src.sensitivity``), in Distiller's style.

Every weight-bearing layer (each GRU direction's input and hidden projections, each Linear, each
conv) is quantized alone to int8 (dynamic and static, where they apply) and pruned alone at a
ladder of sparsities; each treated model is scored on the **tuning** split only (never the test
one) and timed at batch size 1 side by side with the untreated model of the same structure (GRUs
decomposed, so a layer's own change is what moves). Unstructured pruning keeps dense tensors,
so its latency is not timed: nothing in the kernels it runs changes.

The run is an analysis of its baseline, not a variant: tagged ``method`` and ``analysis``
``sensitivity`` (the board never ranks it) and ``baseline_run_id``, with
``tables/sensitivity.csv`` and ``plots/sensitivity.png`` (layer x treatment heat map of the
tuning-loss rise).

Like a training, the analysis resumes and is reused: every treated model's row is logged as it
is computed (``checkpoint/sensitivity-rows.csv``, never read as the result), so the same command
after a kill reopens the stopped run (same job key and data) and treats only the layers left;
and a FINISHED analysis of the same job is returned, not run again (``rerun=true`` runs it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.core import schema
from src.core.errors import ConfigError
from src.core.lifecycle import phase
from src.core.progress import progress
from src.measure.latency import LatencySpec, speedup_intervals, summarise, time_interleaved
from src.methods.layers import PRUNE, SCHEMES, decomposed, treat, weight_layers
from src.pipeline.flow import claimed_baseline, opened_store
from src.pipeline.lookup import ResumeRefused, job_runs, stopped_with_state
from src.pipeline.record import log_inputs, open_run
from src.pipeline.specs import RunSpec
from src.tracking.store import RunStore

log = logging.getLogger(__name__)
LOSS = schema.TUNING_LOSS
ANALYSIS = "sensitivity"
TABLE = "sensitivity"
ROWS = "sensitivity-rows"  # the rows so far, in schema.CHECKPOINT_DIR: what a resume starts from


@dataclass(frozen=True)
class SensitivitySpec:
    """What ``python -m src.sensitivity`` tries on each layer.

    Attributes:
        treatments: Quantization treatments: ``dynamic`` and / or ``static`` int8.
        sparsities: The pruning ladder (fractions of the layer's weights zeroed).
        subsample: Snippets per tuning vehicle (or validation images) each treated model is
            scored on; None: all (14 s a pass on the default data, against 4 s at 32).
        latency: Time each quantized layer against the untreated model at batch size 1.
    """

    treatments: tuple[str, ...] = SCHEMES
    sparsities: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    subsample: int | None = 32
    latency: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "treatments", tuple(self.treatments))
        object.__setattr__(self, "sparsities", tuple(float(s) for s in self.sparsities))
        unknown = sorted(set(self.treatments) - set(SCHEMES))
        if unknown:
            raise ConfigError(f"sensitivity.treatments has {unknown}; choose from {list(SCHEMES)}")
        if not all(0 < s < 1 for s in self.sparsities):
            raise ConfigError(f"sensitivity.sparsities={list(self.sparsities)} must be in (0, 1)")
        if self.subsample is not None and int(self.subsample) < 1:
            raise ConfigError(f"sensitivity.subsample={self.subsample} must be >= 1 or null")

    def all_treatments(self) -> list[str]:
        return [*self.treatments, *(f"{PRUNE}:{s:g}" for s in self.sparsities)]


def run_sensitivity(spec: RunSpec, settings: SensitivitySpec) -> tuple[str, pd.DataFrame]:
    """Analyse the baseline of ``spec`` (found, or trained first); the run id and the table.
    The same analysis FINISHED before is returned as it is; one that stopped is resumed."""
    store = opened_store(spec)
    baseline = claimed_baseline(spec.as_baseline(), store, reuse_older=True)
    spec = dataclasses.replace(spec, identity=dataclasses.replace(spec.identity, method=ANALYSIS))
    fingerprint = baseline.data.fingerprint()
    done = None if spec.rerun else finished_analysis(spec, store, fingerprint)
    if done is not None:
        log.info(
            "sensitivity: already done by run %s with this config, data and code: reused, not "
            "run again (rerun=true runs it again)",
            done[0],
        )
        return done
    stopped = resumable_analysis(spec, store, fingerprint)
    try:
        return _analyse(spec, settings, store, baseline, fingerprint, stopped)
    except ResumeRefused as err:  # the stopped run keeps its record; this one starts anew
        log.warning("%s: analysing afresh in a new run", err)
        return _analyse(spec, settings, store, baseline, fingerprint, None)


def _analyse(spec: RunSpec, settings, store: RunStore, baseline, fingerprint: str, stopped):
    """The analysis in a new run, or in ``stopped`` from the rows it logged."""
    earlier = stopped and store.read_table(stopped.info.run_id, ROWS, schema.CHECKPOINT_DIR)
    resume = stopped and stopped.info.run_id
    with open_run(spec, store, baseline.run_id, resume=resume) as run:
        run.set_tags({schema.ANALYSIS: ANALYSIS, schema.DATA_FINGERPRINT: fingerprint})
        log_inputs(run, spec, baseline.data, fingerprint, stopped)

        def save(rows: list[dict]) -> None:
            run.log_table(ROWS, pd.DataFrame(rows), schema.CHECKPOINT_DIR)

        table = analyze(baseline.model, baseline.data, spec, settings, earlier, save)
        run.log_table(TABLE, table)
        run.log_metrics(summary(table, spec.task.tuning_primary))
        worst = table.loc[table.loss_rise.idxmax()]
        run.set_tags(
            {
                schema.MOST_SENSITIVE: f"{worst.layer} ({worst.treatment}: tuning loss "
                f"{worst.loss_rise:+.1%})"
            }
        )
        run.log_artifact(heat_map(table, spec.output_dir / "sensitivity.png"), schema.PLOTS_DIR)
    return run.run_id, table


def finished_analysis(spec: RunSpec, store: RunStore, fingerprint: str):
    """``(run id, table)`` of the newest FINISHED analysis of this very job (its job key: the
    config with the ``sensitivity`` settings, and the code) on this data; None if none."""
    keys = {schema.JOB_KEY: spec.job_key, schema.METHOD: ANALYSIS}
    run = store.find(spec.tracking.experiment, **keys, **{schema.DATA_FINGERPRINT: fingerprint})
    table = run and store.read_table(run.info.run_id, TABLE)
    return None if table is None else (run.info.run_id, table)


def resumable_analysis(spec: RunSpec, store: RunStore, fingerprint: str):
    """The newest analysis of this job that stopped on this data with rows logged, when
    ``trainer.resume=auto`` (:func:`src.pipeline.lookup.stopped_with_state`)."""
    if spec.trainer.resume != "auto":
        return None
    analyses = [r for r in job_runs(spec, store) if r.data.tags.get(schema.METHOD) == ANALYSIS]
    logged = f"{schema.CHECKPOINT_DIR}/{ROWS}.csv"
    run = stopped_with_state(
        analyses, fingerprint, lambda r: store.has_artifact(r.info.run_id, logged)
    )
    if run is not None:
        log.info("resuming sensitivity run %s from the rows it logged", run.info.run_id)
    return run


def analyze(
    model,
    data,
    spec: RunSpec,
    settings: SensitivitySpec,
    earlier: pd.DataFrame | None = None,
    save: Callable[[list[dict]], None] | None = None,
) -> pd.DataFrame:
    """One row per (layer, treatment): tuning metric and loss, their change, and the speedup.
    Rows of ``earlier`` (a stopped analysis's) are taken as they are; ``save`` gets the rows
    so far after each treated model."""
    base = decomposed(model)
    metric = spec.task.tuning_primary
    with phase("scoring the untreated model on the tuning split"):
        fp32 = spec.task.tune(base, data, spec.seed, settings.subsample)
    timing = dataclasses.replace(spec.latency, batch_sizes=(1,))
    example = data.example_inputs(1)
    layers, rows = weight_layers(base), []
    todo = [
        (layer, t)
        for t in settings.all_treatments()
        for layer in layers
        if layer.takes(t.split(":")[0])
    ]
    done = _rows_by_key(earlier)
    left = sum((layer.name, t) not in done for layer, t in todo)
    if done:
        log.info("%d of %d treated models taken from the stopped run", len(todo) - left, len(todo))
    with phase(f"treating {len(layers)} layers one at a time ({left} of {len(todo)} models)"):
        for layer, treatment in progress(todo, "sensitivity"):
            row = done.get((layer.name, treatment))
            if row is None:
                treated = treat(base, layer, treatment, data)
                figures = spec.task.tune(treated, data, spec.seed, settings.subsample)
                row = _row(layer, treatment, figures, fp32, metric)
                if settings.latency and not treatment.startswith(PRUNE):
                    row.update(_speedup(base, treated, example, timing))
                if save is not None:
                    save([*rows, row])
            rows.append(row)
    return pd.DataFrame(rows).assign(**{f"fp32_{metric}": fp32[metric], f"fp32_{LOSS}": fp32[LOSS]})


def _row(layer, treatment: str, figures: dict, fp32: dict, metric: str) -> dict:
    """The tuning figures of ``layer`` treated alone, and their change from the untreated."""
    return {
        "layer": layer.name,
        "kind": layer.kind,
        "params": layer.params,
        "treatment": treatment,
        metric: figures[metric],
        f"delta_{metric}": figures[metric] - fp32[metric],
        LOSS: figures[LOSS],
        "loss_rise": figures[LOSS] / fp32[LOSS] - 1,
    }


def _rows_by_key(earlier: pd.DataFrame | None) -> dict[tuple[str, str], dict]:
    """A stopped analysis's rows by (layer, treatment), without the columns it left empty."""
    if earlier is None:
        return {}
    records = earlier.to_dict("records")
    return {
        (r["layer"], r["treatment"]): {k: v for k, v in r.items() if not pd.isna(v)}
        for r in records
    }


def _speedup(base, treated, example, timing: LatencySpec) -> dict[str, float]:
    """The treated model's speedup over the untreated one at batch 1, timed interleaved."""
    timings = time_interleaved({"fp32": base, "treated": treated}, lambda b: example, timing)
    p50 = {k: v[schema.LATENCY_BS1] for k, v in summarise(timings, ["fp32", "treated"]).items()}
    interval = speedup_intervals(timings, "fp32", "treated")
    low, high = schema.interval(schema.SPEEDUP_BS1)
    return {
        "ms_p50_bs1": p50["treated"],
        "speedup_bs1": p50["fp32"] / p50["treated"],
        **dict(zip(schema.interval("speedup_bs1"), (interval[low], interval[high]), strict=True)),
    }


def summary(table: pd.DataFrame, metric: str) -> dict[str, float]:
    """Run metrics: layers analysed, the untreated figures, and the worst single-layer rises."""
    name = metric.split("/")[-1]
    out = {
        "sensitivity/layers": float(table.layer.nunique()),
        f"sensitivity/fp32_{name}": float(table[f"fp32_{metric}"].iloc[0]),
        "sensitivity/fp32_tuning_loss": float(table[f"fp32_{LOSS}"].iloc[0]),
    }
    for treatment, rows in table.groupby("treatment"):
        key = treatment.replace(":", "_")
        out[f"sensitivity/{key}/max_loss_rise"] = float(rows.loss_rise.max())
        out[f"sensitivity/{key}/min_delta_{name}"] = float(rows[f"delta_{metric}"].min())
    return out


def heat_map(table: pd.DataFrame, path: Path) -> Path:
    """Layer x treatment heat map of the tuning-loss rise (%), annotated, Distiller style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = table.pivot_table(index="layer", columns="treatment", values="loss_rise", sort=False)
    grid = grid[[t for t in dict.fromkeys(table.treatment) if t in grid]] * 100
    fig, ax = plt.subplots(figsize=(1.2 * len(grid.columns) + 4, 0.35 * len(grid) + 1.5))
    image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="magma_r")
    ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(grid)), grid.index)
    dark = float(grid.max().max()) / 2
    for (i, j), value in pd.DataFrame(grid.to_numpy()).stack().items():
        color = "white" if value > dark else "black"
        ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, label="tuning-loss rise (%)")
    ax.set_title("per-layer sensitivity: each layer treated alone (tuning split)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
