"""``+method=distill`` in process: ``pytest tests/methods/test_distill.py``."""

import pytest

from src.core.errors import ConfigError
from src.methods import MethodContext, apply_method, method_config
from src.methods.distill import make_student
from src.models import create_model
from src.tasks import create_task
from src.tasks.anomaly import ResponseDistillLoss


def test_student_is_the_same_family_with_overrides():
    teacher = create_model("dyad_tiny")
    student = make_student(teacher, {"hidden_size": 4, "latent_size": 2})
    assert type(student) is type(teacher)
    assert student.config.hidden_size == 4 and student.config.channels == teacher.config.channels
    with pytest.raises(ConfigError, match="hidden_sz"):
        make_student(teacher, {"hidden_sz": 4})


def test_apply_trains_the_student_with_the_tasks_distillation_loss():
    seen = {}

    def fine_tune(model, epochs, lr, extra_loss=None):
        seen.update(model=model, epochs=epochs, lr=lr, extra=extra_loss)

    config = method_config(
        {"name": "distill", "student": {"hidden_size": 4}, "epochs": 2, "beta": 0.5}
    )
    context = MethodContext(fine_tune=fine_tune, task=create_task({"name": "anomaly"}))
    teacher = create_model("dyad_tiny")
    student = apply_method(teacher, config, context)
    assert seen["model"] is student and seen["epochs"] == 2 and seen["lr"] is None
    assert isinstance(seen["extra"], ResponseDistillLoss) and student.config.hidden_size == 4
    assert seen["extra"].beta == 0.5 and seen["extra"].project is not None
    assert not any(p is q for p in seen["extra"].parameters() for q in student.parameters())


def test_teacher_run_id_is_the_baseline_and_student_is_required():
    config = method_config({"name": "distill", "student": {"hidden": 8}, "teacher_run_id": "abc"})
    assert config.baseline_run_id == "abc"
    with pytest.raises(ConfigError, match="method.student"):
        method_config({"name": "distill"})
