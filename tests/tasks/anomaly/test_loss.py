"""DyAD loss and scoring: ``python -m pytest tests/tasks/anomaly/test_loss.py``."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from src.core.errors import ConfigError
from src.models import create_model
from src.models.dyad import DyadOutput
from src.tasks import OptimSpec
from src.tasks.anomaly import AnomalyModule, DyadLoss, snippet_errors


def test_kl_annealing_schedules():
    linear = DyadLoss(anneal0=0.1, x0=500)
    assert linear.kl_weight(1) == pytest.approx(0.1 / 500)
    assert linear.kl_weight(250) == pytest.approx(0.05)
    assert linear.kl_weight(10_000) == pytest.approx(0.1)
    logistic = DyadLoss(anneal0=0.1, x0=500, k=0.0025, anneal_function="logistic")
    assert logistic.kl_weight(500) == pytest.approx(0.05)
    assert logistic.kl_weight(1) == pytest.approx(0.1 / (1 + math.exp(0.0025 * 499)))
    with pytest.raises(ConfigError, match="anneal_function"):
        DyadLoss(anneal_function="cosine")


class _Fixed(nn.Module):
    """A 'model' with hand-picked outputs, so the loss can be worked out on paper."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return DyadOutput(
            prediction=torch.tensor([[[0.5]], [[3.0]]]) + self.w,
            mean=torch.tensor([[1.0], [0.0]]),
            log_var=torch.tensor([[0.0], [0.0]]),
            z=torch.tensor([[1.0], [0.0]]),
            mileage=torch.tensor([[1.0], [0.0]]),
        )

    def split_target(self, x):
        return x[..., 2:]


def test_loss_golden_value_worked_by_hand():
    """The reference loss (notes/dyad.md 5.6) on numbers small enough to do by hand:
    SmoothL1 of errors -0.5 and 3: (0.5 * 0.25 + (3 - 0.5)) / 2 = 1.3125; mileage MSE of 1 and
    0: 0.5; KL = -1/2 * sum(1 + 0 - mu^2 - 1) over mu = (1, 0): 0.5, divided by B=2: 0.25; KL
    weight at step 250 of x0 = 500 with anneal0 0.1: 0.05. Loss = 10 * 1.3125 + 0.001 * 0.5 +
    0.05 * 0.25 = 13.138."""
    loss = DyadLoss(nll_weight=10, latent_label_weight=0.001, anneal0=0.1, x0=500)
    module = AnomalyModule(_Fixed(), loss, OptimSpec(lr=1e-3))
    x = torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]])
    parts = module.loss_parts({"x": x, "mileage": torch.zeros(2, 1)}, step=250)
    assert parts["nll"].item() == pytest.approx(1.3125)
    assert parts["label"].item() == pytest.approx(0.5)
    assert parts["kl"].item() == pytest.approx(0.25)
    assert parts["kl_weight"].item() == pytest.approx(0.05)
    assert parts["loss"].item() == pytest.approx(13.138)


def test_loss_on_the_model_equals_the_reference_formula():
    torch.manual_seed(0)
    model = create_model("dyad_tiny").eval()  # eval: z = mean, so the forward is repeatable
    loss = DyadLoss(nll_weight=10, latent_label_weight=0.5, anneal0=0.1)
    module = AnomalyModule(model, loss, OptimSpec(lr=1e-3))
    batch = {"x": torch.randn(5, 128, 7), "mileage": torch.rand(5, 1)}
    parts = module.loss_parts(batch, step=100)
    out = model(batch["x"])
    nll = F.smooth_l1_loss(out.prediction, batch["x"][..., 2:])
    label = F.mse_loss(out.mileage, batch["mileage"])
    kl = -0.5 * torch.sum(1 + out.log_var - out.mean**2 - out.log_var.exp())
    expected = 10 * nll + 0.5 * label + 0.1 * (100 / 500) * kl / 5
    torch.testing.assert_close(parts["loss"], expected)


def test_snippet_errors_are_mse_of_the_responses():
    model = create_model("dyad_tiny")
    x = torch.randn(7, 128, 7)
    loader = [{"x": x[:4], "row": torch.arange(4)}, {"x": x[4:], "row": torch.arange(4, 7)}]
    errors, rows = snippet_errors(model, loader)
    with torch.inference_mode():
        pred = model.eval()(x).prediction
    expected = ((pred - x[..., 2:]) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(torch.from_numpy(errors), expected)
    assert rows.tolist() == list(range(7))


def _fit_once(root, cache, seed):
    import pytorch_lightning as pl

    from src.data.battery import BatteryDataModule

    pl.seed_everything(seed)
    model = create_model("dyad_tiny")
    data = BatteryDataModule(root, 3, 0, model.config.channels, cache, batch_size=64)
    data.setup()
    module = AnomalyModule(model, DyadLoss(), OptimSpec(lr=5e-3), max_epochs=1)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        logger=False,
        deterministic=True,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    return model.state_dict()


def test_training_is_deterministic_for_a_seed(tiny_root, tmp_path):
    first = _fit_once(tiny_root, tmp_path, seed=1)
    second = _fit_once(tiny_root, tmp_path, seed=1)
    other = _fit_once(tiny_root, tmp_path, seed=2)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    assert any(not torch.equal(first[k], other[k]) for k in first)
