"""What a shipped DyAD variant answers: the released frame in, one line for a malformed one, and
each vehicle's answer independent of the other vehicles in the request."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from src.data.layout import COLUMNS
from src.methods import method_config, rebuild
from src.models import create_model
from src.serve.anomaly import (
    CAR,
    InputError,
    VehicleRule,
    frame_from_arrays,
    min_snippets,
    snippet_arrays,
    vehicle_answers,
)
from src.tasks.anomaly.task import snippet_errors
from src.tasks.anomaly.vehicle import vehicle_scores


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("dyad_tiny").eval()


def rule_for(model, h: int = 500, threshold: float = 1.0) -> VehicleRule:
    channels = list(model.config.channels)
    extras = {
        "columns": COLUMNS,
        "channels": channels,
        "normalizer": {"mode": "global", "mean": [1.0] * 8, "scale": [2.0] * 8},
    }
    return VehicleRule.from_extras(extras, h, threshold)


def request(cars: dict[int, int], seed: int = 0) -> pd.DataFrame:
    """Cars -> snippet counts, random values in the released column order."""
    rng = np.random.default_rng(seed)
    owners = np.concatenate([[car] * n for car, n in cars.items()])
    snippets = rng.normal(size=(len(owners), 128, len(COLUMNS))).astype(np.float32)
    return frame_from_arrays(owners, snippets, COLUMNS)


def test_answers_are_the_tasks_scores_at_the_runs_h_and_threshold(model):
    rule = rule_for(model, h=500, threshold=0.9)
    frame = request({7: 4, 3: 6})
    answer = vehicle_answers(model, frame, rule)
    assert list(answer[CAR]) == [7, 3] and list(answer.snippets) == [4, 6]
    cars, x = snippet_arrays(frame, rule)
    batch = [{"x": torch.from_numpy(x), "row": torch.arange(len(x))}]
    errors, _ = snippet_errors(model, batch)  # every snippet in one batch, as an evaluation would
    expected = vehicle_scores(errors, cars, 500)
    np.testing.assert_allclose(answer.score, expected.loc[[7, 3]], rtol=1e-6)
    assert (answer.flag == (answer.score > 0.9)).all() and (answer.threshold == 0.9).all()


def test_a_vehicles_answer_does_not_depend_on_the_others_in_the_request(model):
    """Dynamic int8 quantizes activations per batch: each vehicle is scored in its own."""
    int8 = rebuild(copy.deepcopy(model), method_config({"kind": "dynamic"}))
    rule = rule_for(model)
    both = request({1: 5, 2: 5})
    alone = both[both[CAR] == 1]
    scaled = both.copy()
    scaled.loc[scaled[CAR] == 2, COLUMNS[:7]] *= 50  # another vehicle with huge activations
    a = vehicle_answers(int8, alone, rule).set_index(CAR).score
    b = vehicle_answers(int8, scaled, rule).set_index(CAR).score
    assert a.loc[1] == b.loc[1]


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        (lambda f: f.drop(columns=["volt", CAR]), "lacks columns ['car', 'volt']"),
        (lambda f: f.assign(volt="x"), "columns ['volt'] must be numbers"),
        (lambda f: f.assign(soc=np.where(f.index == 3, np.nan, f.soc)), "['soc'] hold NaN or inf"),
        (lambda f: f.iloc[:-1], "do not have 128 rows"),
        (lambda f: f[f.snippet == 0], "have 1 snippet(s); the score needs at least 2"),
    ],
)
def test_a_malformed_request_is_one_line_naming_what_to_fix(model, broken, words):
    frame = request({5: 3})
    with pytest.raises(InputError) as err:
        vehicle_answers(model, broken(frame), rule_for(model, h=500))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_fewest_snippets_keeps_the_top_h_share_at_one_snippet_or_more():
    assert min_snippets(500) == 2 and min_snippets(950) == 2 and min_snippets(50) == 20
    assert min_snippets(1000) == 1
