"""Classification metrics: ``python -m pytest tests/tasks/test_classification.py``."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score

from src.core import schema
from src.tasks import EvalResult, create_task
from src.tasks.classification import outputs_table, per_class_table, predict


def test_predict_and_per_class_table_match_sklearn():
    model = torch.nn.Linear(4, 3)
    x = torch.randn(50, 4)
    y = torch.randint(0, 3, (50,))
    loader = [{"x": x[:20], "y": y[:20]}, {"x": x[20:], "y": y[20:]}]
    pred, labels, loss = predict(model, loader)
    expected = model(x).argmax(dim=1).numpy()
    np.testing.assert_array_equal(pred, expected)
    assert abs(loss - torch.nn.functional.cross_entropy(model(x), y).item()) < 1e-5
    table = per_class_table(pred, labels, ["a", "b", "c"])
    assert table.n.sum() == 50
    weighted = (table.accuracy * table.n).sum() / 50
    assert abs(weighted - accuracy_score(labels, pred)) < 1e-12


def _outputs(logits: torch.Tensor, y: np.ndarray) -> EvalResult:
    log_probs = torch.log_softmax(logits, dim=1).numpy()
    table = outputs_table(logits.argmax(dim=1).numpy(), y, log_probs)
    return EvalResult({}, {schema.IMAGE_OUTPUTS_TABLE: table})


def test_predict_hands_out_log_probabilities():
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    log_probs: list = []
    pred, _, _ = predict(model, [{"x": x, "y": y}], log_probs)
    expected = torch.log_softmax(model(x), dim=1).detach().numpy()
    np.testing.assert_allclose(np.concatenate(log_probs), expected, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate(log_probs).argmax(1), pred)


def test_fidelity_of_images_counts_flips_and_kl_and_reads_logged_outputs():
    task = create_task({"name": "classification"})
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 10, generator=gen)
    y = torch.randint(0, 10, (300,), generator=gen).numpy()
    base = _outputs(logits, y)
    same = task.fidelity(_outputs(logits.clone(), y), base, seed=0)
    assert same[schema.FIDELITY_FLIPS] == 0 and same[schema.FIDELITY_AGREEMENT] == 1
    assert same[schema.FIDELITY_KL] == 0 and same[schema.FIDELITY_MCNEMAR] == 1
    noisy = logits + 0.7 * torch.randn(300, 10, generator=gen)
    found = task.fidelity(_outputs(noisy, y), base, seed=0)
    flips = int((logits.argmax(1) != noisy.argmax(1)).sum())
    assert found[schema.FIDELITY_FLIPS] == flips > 0 and found[schema.FIDELITY_N_UNITS] == 300
    p, q = torch.log_softmax(logits, 1), torch.log_softmax(noisy, 1)
    kl = (p.exp() * (p - q)).sum(1).mean().item()
    assert found[schema.FIDELITY_KL] == pytest.approx(kl, rel=1e-5)
    table = base.tables[schema.IMAGE_OUTPUTS_TABLE]  # as RunStore.read_table gives it back
    logged = pd.read_csv(io.StringIO(table.to_csv(index=False)), dtype={"unit": str})
    read_back = EvalResult({}, {schema.IMAGE_OUTPUTS_TABLE: logged})
    assert task.fidelity(_outputs(noisy, y), read_back, seed=0) == found
    assert task.fidelity(_outputs(noisy, y), EvalResult({}, {}), seed=0) == {}


def test_the_validation_images_give_the_searchs_shift_apart_from_the_test_figures():
    task = create_task({"name": "classification"})
    gen = torch.Generator().manual_seed(1)
    logits, y = torch.randn(200, 10, generator=gen), torch.randint(0, 10, (200,), generator=gen)
    y = y.numpy()

    def result(test_logits, tuning_logits):
        found = _outputs(test_logits, y)
        tuning = _outputs(tuning_logits, y).tables[schema.IMAGE_OUTPUTS_TABLE]
        found.tables[schema.TUNING_OUTPUTS_TABLE] = tuning
        return found

    base = result(logits, logits)
    assert task.fidelity(result(logits, logits), base, seed=0)[schema.TUNING_SHIFT] == 0
    shifts = []
    for scale in (0.1, 0.3, 0.9):  # the test outputs unchanged: only the validation ones move
        noisy = logits + scale * torch.randn(200, 10, generator=torch.Generator().manual_seed(2))
        shifts.append(task.fidelity(result(logits, noisy), base, seed=0)[schema.TUNING_SHIFT])
    assert 0 < shifts[0] < shifts[1] < shifts[2]
