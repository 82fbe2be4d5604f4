"""Training from specs: ``python -m pytest tests/pipeline/test_fit.py``."""

import pytest
import torch

from src.cli.jobs import composed
from src.cli.specs import resolved
from src.core.errors import ConfigError
from src.core.threads import torch_threads
from src.data.sources import build_datamodule
from src.models import create_model
from src.pipeline import TrainerSpec
from src.pipeline.fit import Fitter
from src.tasks import OptimSpec, create_task

QUIET = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "limit_train_batches": 2,
    "limit_val_batches": 0,  # validation runs in eval mode, by design
}


def test_fine_tuning_trains_in_train_mode_with_its_threads_and_restores_them(tmp_path):
    data = build_datamodule(resolved(composed(["experiment=cnn_digits"], tmp_path))["data"])
    model = create_model("cnn_tiny", in_channels=1, num_classes=10, image_size=32).eval()
    seen = []
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.register_forward_pre_hook(lambda m, _: seen.append((m.training, torch.get_num_threads())))
    with torch_threads(2):
        trainer = TrainerSpec(1, QUIET, threads=1)
        fitter = Fitter(
            create_task({"name": "classification"}),
            data,
            OptimSpec(lr=1e-3),
            trainer,
            None,
            tmp_path,
        )
        fitter.fit(model)  # a reloaded baseline is in eval mode: BatchNorm must still train
        assert seen and all(training for training, _ in seen)
        assert {threads for _, threads in seen} == {1}
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [0, True])
def test_training_threads_are_validated(threads):
    with pytest.raises(ConfigError, match="trainer.threads"):
        TrainerSpec(1, {}, threads=threads)
