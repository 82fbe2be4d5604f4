"""Classification metrics: ``python -m pytest tests/tasks/test_classification.py``."""

import numpy as np
import torch
from sklearn.metrics import accuracy_score

from src.tasks.classification import per_class_table, predict


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
