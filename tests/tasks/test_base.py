"""Task objects: ``python -m pytest tests/tasks/test_base.py``."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from src.core import schema
from src.core.errors import ConfigError
from src.models import create_model
from src.stats import PairedCell, delong_paired, paired_difference
from src.tasks import TASKS, OptimSpec, create_task
from src.tasks.anomaly import AnomalyTask, DyadLoss
from src.tasks.base import EvalResult


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_declares_its_primary_metric_as_a_headline(name):
    task = create_task({"name": name})
    primary = task.metric(task.primary)
    assert primary is not None and primary.headline
    assert len({m.name for m in task.metrics}) == len(task.metrics)
    assert all(m.name.startswith("test/") for m in task.metrics)


def test_settings_are_validated_and_typed():
    task = create_task({"name": "anomaly", "loss": {"x0": 100}, "evaluation": {"n_boot": 5}})
    assert isinstance(task, AnomalyTask) and task.loss == DyadLoss(x0=100)
    assert task.evaluation.n_boot == 5 and task.evaluation.threshold_rule == "conformal"
    assert task.metric("test/false_alarm_rate").higher_is_better is False
    with pytest.raises(ConfigError, match="task 'anomaly' has no key"):
        create_task({"name": "anomaly", "los": {}})
    with pytest.raises(ConfigError, match="task.evaluation.threshold_rule='best'"):
        create_task({"name": "anomaly", "evaluation": {"threshold_rule": "best"}})
    with pytest.raises(ConfigError, match="task.loss.anneal_function"):
        create_task({"name": "anomaly", "loss": {"anneal_function": "cosine"}})
    with pytest.raises(ConfigError, match="Unknown task 'vision'"):
        create_task({"name": "vision"})
    with pytest.raises(ConfigError, match="optim.lr"):
        OptimSpec(lr=0)


def test_build_module_takes_the_optimiser_and_epochs():
    task = create_task({"name": "classification"})
    module = task.build_module(create_model("cnn_tiny"), OptimSpec(lr=0.1, cosine_factor=0.5), 4)
    optimizers = module.configure_optimizers()
    scheduler = optimizers["lr_scheduler"]["scheduler"]
    assert optimizers["optimizer"].param_groups[0]["lr"] == 0.1
    assert scheduler.T_max == 4 and scheduler.eta_min == pytest.approx(0.05)


def test_classification_distillation_is_softened_kl_times_t_squared():
    teacher = create_model("cnn_tiny").eval()
    task = create_task({"name": "classification"})
    loss = task.distill_loss(
        teacher, create_model("cnn_tiny"), alpha=0.5, temperature=2.0, beta=0.0
    )
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        same = loss(x, teacher(x))
    assert same["distill"].item() == pytest.approx(0.0, abs=1e-6)
    parts = loss(x, torch.zeros(4, 10))
    t = torch.softmax(teacher(x).detach() / 2, dim=1)
    expected = (t * (t.log() - torch.log(torch.full_like(t, 0.1)))).sum(1).mean() * 4
    assert parts["distill"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert parts["total"].item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


def test_dyad_distillation_matches_predictions_and_projects_latents():
    teacher = create_model("dyad_tiny").eval()
    student = create_model("dyad_tiny", hidden_size=4, latent_size=2)
    task = create_task({"name": "anomaly"})
    loss = task.distill_loss(teacher, student, alpha=1.0, temperature=4.0, beta=0.5)
    assert isinstance(loss.project, torch.nn.Linear) and loss.project.in_features == 2
    parts = loss(torch.randn(3, 16, 7), student(torch.randn(3, 16, 7)))
    assert set(parts) == {"distill", "feature", "total"}
    parts["total"].backward()
    assert loss.project.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())  # the teacher never learns
    assert not any(p is q for p in loss.parameters() for q in teacher.parameters())


def _units(ids, labels, values):
    return pd.DataFrame({"unit": ids, "label": labels, "value": values})


def test_paired_logs_the_calibrated_interval_its_tests_and_the_changed_pairs():
    task = create_task({"name": "anomaly"})
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(10), np.zeros(12)].astype(int)
    base = 1.7 * y + rng.normal(0, 1, 22)
    variant = base + rng.normal(0, 0.3, 22)
    ids = [f"car{i}" for i in range(22)]
    metrics, table, tags = task.paired(
        EvalResult({}, units=_units(ids, y, variant)),
        EvalResult({}, units=_units(ids, y, base)),
        seed=0,
    )
    estimate = paired_difference(
        [PairedCell(np.array(ids), y, base, variant)], "auroc", margin=0.02
    )
    delong = delong_paired(y, base, variant)
    name = partial(schema.paired_metric, "delta/auroc")
    assert metrics["delta/auroc_ci_low"] == pytest.approx(estimate.ci_low)
    assert metrics["delta/auroc_ci_high"] == pytest.approx(estimate.ci_high)
    assert metrics[name("p_ni")] == pytest.approx(estimate.p_ni)
    assert metrics[name("p")] == pytest.approx(delong.p_value)  # two-sided superiority
    assert metrics[name("pairs_total")] == 120
    moved = (metrics[name("pairs_better")] - metrics[name("pairs_worse")]) / 120
    assert moved == pytest.approx(delong.difference, abs=1e-12)
    assert 0 < metrics[name("units_moved")] <= 22
    assert set(metrics) == {"delta/auroc_ci_low", "delta/auroc_ci_high"} | {
        name(k) for k in schema.PAIRED_STATS
    }
    assert tags == {schema.INTERVAL_METHOD: "DeLong-t (df=9)"} and len(table) == 22


def test_paired_on_images_and_without_units():
    task = create_task({"name": "classification"})
    right = np.r_[np.ones(900), np.zeros(100)]
    worse = right.copy()
    worse[:30] = 0
    ids = np.arange(1000)
    metrics, _, tags = task.paired(
        EvalResult({}, units=_units(ids, np.zeros(1000), worse)),
        EvalResult({}, units=_units(ids, np.zeros(1000), right)),
        seed=0,
    )
    assert metrics["delta/accuracy_pairs_worse"] == 30 and metrics["delta/accuracy_p"] < 1e-6
    assert metrics["delta/accuracy_ci_high"] < 0 and metrics["delta/accuracy_p_ni"] > 0.5
    assert tags[schema.INTERVAL_METHOD] == "paired-proportion adjusted Wald (z)"
    assert task.paired(EvalResult({}), EvalResult({}, units=_units(ids, right, right)), 0) == (
        {},
        None,
        {},
    )
