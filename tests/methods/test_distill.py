"""``+method=distill`` in process: ``pytest tests/methods/test_distill.py``."""

import pytest
import torch

from src.errors import ConfigError
from src.methods import MethodContext, apply_method, method_config
from src.methods.distill import DistillLoss, make_student
from src.models import create_model


def test_student_is_the_same_family_with_overrides():
    teacher = create_model("dyad_tiny")
    student = make_student(teacher, {"hidden_size": 4, "latent_size": 2})
    assert type(student) is type(teacher)
    assert student.config.hidden_size == 4 and student.config.channels == teacher.config.channels
    with pytest.raises(ConfigError, match="hidden_sz"):
        make_student(teacher, {"hidden_sz": 4})


def test_classification_loss_is_softened_kl_times_t_squared():
    teacher = create_model("cnn_tiny").eval()
    loss = DistillLoss(teacher, "classification", alpha=0.5, temperature=2.0)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        same = loss(x, teacher(x))
    assert same["distill"].item() == pytest.approx(0.0, abs=1e-6)
    parts = loss(x, torch.zeros(4, 10))
    t = torch.softmax(teacher(x).detach() / 2, dim=1)
    expected = (t * (t.log() - torch.log(torch.full_like(t, 0.1)))).sum(1).mean() * 4
    assert parts["distill"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert parts["total"].item() == pytest.approx(0.5 * expected.item(), rel=1e-4)


def test_dyad_loss_matches_predictions_and_projects_latents():
    teacher = create_model("dyad_tiny").eval()
    student = make_student(teacher, {"hidden_size": 4, "latent_size": 2})
    loss = DistillLoss(teacher, "anomaly", alpha=1.0, beta=0.5, student_latent=2)
    assert isinstance(loss.project, torch.nn.Linear) and loss.project.in_features == 2
    parts = loss(torch.randn(3, 16, 7), student(torch.randn(3, 16, 7)))
    assert set(parts) == {"distill", "feature", "total"}
    parts["total"].backward()
    assert loss.project.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())  # the teacher never learns
    assert not any(p is q for p in loss.parameters() for q in teacher.parameters())


def test_apply_trains_the_student_with_the_extra_loss():
    seen = {}

    def fine_tune(model, epochs, lr, extra_loss=None):
        seen.update(model=model, epochs=epochs, lr=lr, extra=extra_loss)

    config = method_config({"name": "distill", "student": {"hidden_size": 4}, "epochs": 2})
    student = apply_method(
        create_model("dyad_tiny"), config, MethodContext(fine_tune=fine_tune, task="anomaly")
    )
    assert seen["model"] is student and seen["epochs"] == 2 and seen["lr"] is None
    assert isinstance(seen["extra"], DistillLoss) and student.config.hidden_size == 4


def test_teacher_run_id_is_the_baseline_and_student_is_required():
    config = method_config({"name": "distill", "student": {"hidden": 8}, "teacher_run_id": "abc"})
    assert config.baseline_run_id == "abc"
    with pytest.raises(ConfigError, match="method.student"):
        method_config({"name": "distill"})
