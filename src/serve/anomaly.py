"""What a shipped DyAD variant answers: per vehicle, its score, the threshold and the flag, from
charging snippets in the released layout.

The input is one frame in the release's long form: one row per time step of a snippet, columns
``car`` (the vehicle id), ``snippet`` (the snippet's id within its vehicle) and the model's
channels under their released names (``volt``, ``current``, ``soc``, ...), 128 rows a snippet,
as ``battery_brand*/data/<n>.pkl`` holds them. :func:`frame_from_arrays` writes that frame from
the array form (cars, snippets as an ``(N, 128, C)`` array in the release's column order).

Scoring is the task's own (:func:`src.tasks.anomaly.task.snippet_errors`, then
:func:`src.tasks.anomaly.vehicle.vehicle_scores` at the run's ``h``), each vehicle in batches of
its own snippets: a dynamic-int8 variant quantizes activations per batch, and a vehicle's answer
must not depend on which other vehicles share the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from src.data.cache import SNIPPET_LENGTH
from src.tasks.anomaly.task import snippet_errors
from src.tasks.anomaly.vehicle import vehicle_scores

CAR, SNIPPET = "car", "snippet"
BATCH = 512  # snippets per forward pass (the evaluation's batch)


class InputError(ValueError):
    """A malformed request: the one-line message names the column or vehicle and the fix."""


@dataclass(frozen=True)
class VehicleRule:
    """How a run turned snippets into an answer.

    Attributes:
        channels: The model's channels, in its order (released column names).
        mean: The training normaliser's mean of each channel.
        scale: Its divisor of each channel.
        h: The robust fraction chosen on the tuning vehicles (thousandths).
        threshold: The alarm threshold on the vehicle score (flag: score above it).
    """

    channels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    h: int
    threshold: float

    @classmethod
    def from_extras(cls, extras: dict, h: float, threshold: float) -> VehicleRule:
        """From a model artifact's extras (columns, channels, normaliser) and the run's figures."""
        columns, channels = list(extras["columns"]), list(extras["channels"])
        picks = [columns.index(c) for c in channels]
        norm = extras["normalizer"]
        mean = np.asarray(norm["mean"], np.float32)[picks]
        scale = np.asarray(norm["scale"], np.float32)[picks]
        return cls(tuple(channels), mean, scale, int(h), float(threshold))

    @property
    def min_snippets(self) -> int:
        return min_snippets(self.h)


def min_snippets(h: float) -> int:
    """Fewest snippets a vehicle needs: below ``1000 / h`` its top-h share is less than one
    snippet, and the score would be its single worst snippet, not the run's statistic."""
    return math.ceil(1000 / float(h))


def snippet_arrays(frame: pd.DataFrame, rule: VehicleRule) -> tuple[np.ndarray, np.ndarray]:
    """``(cars, x)``: each snippet's vehicle and its normalised ``(N, 128, C)`` array, snippets
    in the order they first appear.

    Raises:
        InputError: A missing or non-numeric column, a non-finite value, a snippet without 128
            rows, or a vehicle with fewer than :attr:`VehicleRule.min_snippets` snippets.
    """
    missing = [c for c in (CAR, SNIPPET, *rule.channels) if c not in frame.columns]
    if missing:
        raise InputError(
            f"the frame lacks columns {missing}; send {[CAR, SNIPPET, *rule.channels]}"
        )
    values = _numeric(frame, rule.channels)
    keys = pd.MultiIndex.from_frame(frame[[CAR, SNIPPET]].astype(str))
    codes, uniques = pd.factorize(keys)
    counts = np.bincount(codes, minlength=len(uniques))
    short = [f"{c}/{s}" for (c, s), n in zip(uniques, counts, strict=True) if n != SNIPPET_LENGTH]
    if short:
        raise InputError(
            f"snippets {short[:5]} do not have {SNIPPET_LENGTH} rows; send whole snippets"
        )
    order = np.argsort(codes, kind="stable")
    x = values[order].reshape(len(uniques), SNIPPET_LENGTH, len(rule.channels))
    cars = frame[CAR].to_numpy()[order][::SNIPPET_LENGTH]
    per_car = pd.Series(cars).value_counts()
    few = per_car[per_car < rule.min_snippets]
    if len(few):
        raise InputError(
            f"vehicles {few.index.tolist()[:5]} have {few.min()} snippet(s); the score needs at "
            f"least {rule.min_snippets} per vehicle (h={rule.h})"
        )
    return cars, (x - rule.mean) / rule.scale


def _numeric(frame: pd.DataFrame, channels: tuple[str, ...]) -> np.ndarray:
    """The channels as float32, refusing text, booleans and non-finite values by name."""
    wrong = [c for c in channels if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    wrong += [c for c in channels if pd.api.types.is_bool_dtype(frame[c].dtype)]
    if wrong:
        raise InputError(f"columns {sorted(set(wrong))} must be numbers (float); fix their dtype")
    values = frame[list(channels)].to_numpy(np.float32)
    bad = [c for c, ok in zip(channels, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise InputError(f"columns {bad} hold NaN or inf; drop or repair those snippets")
    return values


def vehicle_answers(
    model: torch.nn.Module, frame: pd.DataFrame, rule: VehicleRule, mixed: bool = False
) -> pd.DataFrame:
    """One row per vehicle, in the order they first appear: ``car``, ``snippets``, ``score``,
    ``threshold`` and ``flag`` (the score above the threshold: faulty). ``mixed``: batch the
    request's snippets together, as an evaluation does, not vehicle by vehicle (what
    :func:`src.ship.package.check_answers` compares to find a batch-dependent model)."""
    cars, x = snippet_arrays(frame, rule)
    errors = np.empty(len(cars), np.float32)
    groups = [np.arange(len(cars))] if mixed else [cars == car for car in pd.unique(cars)]
    for group in groups:
        rows = np.flatnonzero(group)
        batches = [
            {
                "x": torch.from_numpy(np.ascontiguousarray(x[rows[i : i + BATCH]])),
                "row": torch.from_numpy(rows[i : i + BATCH]),
            }
            for i in range(0, len(rows), BATCH)
        ]
        found, at = snippet_errors(model, batches)
        errors[at] = found
    scores = vehicle_scores(errors, cars, rule.h)
    first = pd.unique(cars)
    counts = pd.Series(cars).value_counts()
    answer = pd.DataFrame({CAR: first, "snippets": counts.loc[first].to_numpy(np.int64)})
    answer["score"] = scores.loc[first].to_numpy(np.float64)
    answer["threshold"] = rule.threshold
    answer["flag"] = answer["score"].to_numpy() > rule.threshold
    return answer


def frame_from_arrays(
    cars: np.ndarray, snippets: np.ndarray, columns: list[str], snippet_ids=None
) -> pd.DataFrame:
    """The array form as the served frame: ``snippets`` ``(N, 128, C)`` in ``columns`` order
    (a brand's ``column.pkl``), ``cars`` ``(N,)``; ``snippet_ids`` default to 0..N-1."""
    n, length, width = snippets.shape
    frame = pd.DataFrame(snippets.reshape(n * length, width).astype(np.float64), columns=columns)
    ids = np.arange(n) if snippet_ids is None else np.asarray(snippet_ids)
    frame.insert(0, SNIPPET, np.repeat(ids, length).astype(np.int64))
    frame.insert(0, CAR, np.repeat(np.asarray(cars), length).astype(np.int64))
    return frame
