"""Real test units of a run, for its shipped model's input example and its pre-registration
check, with the run's own answer for them in the runtime that ships: two test vehicles (a
faulty and a normal one when the split has both) read from the run's own data (its logged config
says where, ``data_root=`` overrides), or the run's first test images (the inputs it was timed
on, as pixels again)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from src.core import schema
from src.core.errors import UserError
from src.data.cache import open_store
from src.data.layout import find_brand
from src.data.sources import synthetic_root
from src.pipeline.artifact import load_model_file
from src.serve import anomaly, images
from src.serve.variant import WEIGHTS
from src.ship.package import Example
from src.tracking.store import RunStore


def run_figures(run, runtime: str) -> dict[str, float]:
    """The run's ``h`` and threshold as the runtime that ships chose them (a vehicle model);
    nothing for an image classifier, whose answer is its most probable class."""
    if run.data.tags.get(schema.TASK) != "anomaly":
        return {}
    metrics = run.data.metrics
    prefix = "" if runtime == schema.EAGER else schema.runtime_check(runtime, "")
    try:
        return {k: metrics[f"{prefix}{schema.TEST}{k}"] for k in ("h", "threshold")}
    except KeyError as err:
        raise UserError(
            f"run {run.info.run_id} logged no {err.args[0]}; train it again to ship it"
        ) from None


def build_example(
    store: RunStore, run, runtime: str, figures: dict, files: dict, data_root: str | None
) -> Example:
    """The run's example for its task family."""
    if run.data.tags.get(schema.TASK) == "anomaly":
        return vehicle_example(store, run.info.run_id, runtime, figures, data_root)
    if runtime != schema.EAGER:
        raise UserError("an image classifier ships in eager for now; add runtime=eager")
    return image_example(store, run.info.run_id, load_model_file(files[WEIGHTS]).extras)


def vehicle_example(
    store: RunStore, run_id: str, runtime: str, figures: dict, data_root: str | None = None
) -> Example:
    """Two test vehicles of the run, every snippet of each, and the run's answer for them; the
    kept example cuts each to the fewest snippets a vehicle may have (whole vehicles make
    megabytes of JSON)."""
    table = store.read_table(run_id, schema.VEHICLE_SCORES_TABLE)
    if table is None:
        raise UserError(f"run {run_id} logged no {schema.VEHICLE_SCORES_TABLE} table; retrain it")
    test = table[table.role == "test"]
    cars = [int(g.car.iloc[0]) for _, g in test.groupby("label")][:2]
    expected = _expected(store, run_id, runtime, test, figures["threshold"])
    frame = _frame(store, run_id, cars, data_root)
    keep = anomaly.min_snippets(figures["h"])
    first = frame.groupby(anomaly.CAR)[anomaly.SNIPPET].transform(
        lambda s: s.isin(s.unique()[:keep])
    )
    kept = frame[first.to_numpy(bool)].reset_index(drop=True)
    expected = expected.set_index(anomaly.CAR).loc[cars].reset_index()
    return Example(frame, expected, anomaly.CAR, ["score"], ["flag"], kept)


def image_example(store: RunStore, run_id: str, extras: dict, n: int = 2) -> Example:
    """The run's first ``n`` test images (the inputs it was timed on, as pixels 0-255 again)
    and its log-probabilities and predicted class for them."""
    outputs = store.read_table(run_id, schema.IMAGE_OUTPUTS_TABLE)
    if outputs is None or not store.has_artifact(run_id, schema.TIMING_INPUTS):
        raise UserError(f"run {run_id} kept no test outputs or inputs; train it again to ship it")
    with tempfile.TemporaryDirectory() as tmp:
        x = torch.load(store.download(run_id, schema.TIMING_INPUTS, tmp), weights_only=True)["x"]
    mean, std = images.moments(extras)
    pixels = ((x[:n] * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    classes = [str(c) for c in extras["classes"]]
    rows = outputs.iloc[:n]
    expected = pd.DataFrame({"unit": np.arange(n), "label": [classes[i] for i in rows.pred]})
    for i, name in enumerate(classes):
        expected[images.PROBABILITY + name] = np.exp(rows[f"logp_{i}"].to_numpy(np.float64))
    numeric = [images.PROBABILITY + c for c in classes]
    what = ("class probabilities", "labels")
    return Example(pixels, expected, "unit", numeric, ["label"], pixels, what)


def _expected(store, run_id, runtime, test: pd.DataFrame, threshold: float) -> pd.DataFrame:
    if runtime == schema.EAGER:
        found = test[["car", "robust_score"]].rename(columns={"robust_score": "score"})
    else:  # the runtime's own test scores: its paired table's variant column
        paired = store.read_table(run_id, schema.runtime_paired_table(runtime))
        if paired is None:
            raise UserError(f"run {run_id} kept no {runtime} scores; ship it in eager")
        found = pd.DataFrame({"car": paired.unit.astype(int), "score": paired.variant})
    return found.assign(flag=found.score.to_numpy(float) > threshold)


def _frame(store: RunStore, run_id: str, cars: list[int], data_root: str | None) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.load(store.download(run_id, schema.CONFIG_ARTIFACT, tmp))
    data = cfg.data
    root = data_root or data.root
    if root is None:
        synth = data.synthetic
        root = synthetic_root(synth.preset, synth.dir, int(data.brand), int(synth.seed))
    if not Path(root).is_dir():
        raise UserError(
            f"the run's data {root} is not on this machine; point data_root= at the folder "
            "holding battery_brand*/"
        )
    snippets = open_store(find_brand(root, int(data.brand)), data.cache_dir)
    rows = [np.flatnonzero(snippets.car == car) for car in cars]
    if any(len(r) == 0 for r in rows):
        raise UserError(f"the data in {root} lacks the run's test vehicles {cars}; wrong data_root")
    index = np.concatenate(rows)
    return anomaly.frame_from_arrays(
        snippets.car[index], np.asarray(snippets.snippets[index]), list(snippets.columns)
    )
