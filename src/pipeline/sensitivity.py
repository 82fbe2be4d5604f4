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
"""

from __future__ import annotations

import dataclasses
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
from src.pipeline.record import log_config, open_run
from src.pipeline.specs import RunSpec

LOSS = schema.TUNING_LOSS
ANALYSIS = "sensitivity"
TABLE = "sensitivity"


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
    """Analyse the baseline of ``spec`` (found, or trained first); the run id and the table."""
    store = opened_store(spec)
    baseline = claimed_baseline(spec.as_baseline(), store, reuse_older=True)
    identity = dataclasses.replace(spec.identity, method=ANALYSIS)
    with open_run(dataclasses.replace(spec, identity=identity), store, baseline.run_id) as run:
        run.set_tags({schema.ANALYSIS: ANALYSIS})
        log_config(run, spec, with_method=False)
        table = analyze(baseline.model, baseline.data, spec, settings)
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


def analyze(model, data, spec: RunSpec, settings: SensitivitySpec) -> pd.DataFrame:
    """One row per (layer, treatment): tuning metric and loss, their change, and the speedup."""
    base = decomposed(model)
    task, metric = spec.task, spec.task.tuning_primary
    with phase("scoring the untreated model on the tuning split"):
        fp32 = task.tune(base, data, spec.seed, settings.subsample)
    timing = dataclasses.replace(spec.latency, batch_sizes=(1,))
    example = data.example_inputs(1)
    layers, rows = weight_layers(base), []
    todo = [
        (layer, t)
        for t in settings.all_treatments()
        for layer in layers
        if layer.takes(t.split(":")[0])
    ]
    with phase(f"treating {len(layers)} layers one at a time ({len(todo)} models)"):
        for layer, treatment in progress(todo, "sensitivity"):
            treated = treat(base, layer, treatment, data)
            figures = task.tune(treated, data, spec.seed, settings.subsample)
            row = {
                "layer": layer.name,
                "kind": layer.kind,
                "params": layer.params,
                "treatment": treatment,
                metric: figures[metric],
                f"delta_{metric}": figures[metric] - fp32[metric],
                LOSS: figures[LOSS],
                "loss_rise": figures[LOSS] / fp32[LOSS] - 1,
            }
            if settings.latency and not treatment.startswith(PRUNE):
                row.update(_speedup(base, treated, example, timing))
            rows.append(row)
    return pd.DataFrame(rows).assign(**{f"fp32_{metric}": fp32[metric], f"fp32_{LOSS}": fp32[LOSS]})


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
