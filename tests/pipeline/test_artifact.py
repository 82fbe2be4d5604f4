"""The model artifact: ``python -m pytest tests/pipeline/test_artifact.py``."""

import pytest
import torch

from src.models import create_model
from src.pipeline.artifact import BrokenArtifact, load_model_file, save_model


class Payload:
    """Not a tensor: weights_only refuses to unpickle it."""


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn_tiny").eval()
    return model, save_model(tmp_path / "model.pt", model, "cnn_tiny", {})


def test_a_saved_model_loads_back_with_its_weights(saved):
    model, path = saved
    loaded = load_model_file(path).model
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:500]), "truncated or corrupt"),
        (lambda p: p.write_bytes(b"\x00" * 64), "not a weights-only model file .it is corrupt"),
        (lambda p: torch.save({"format": 3, "x": Payload()}, p), "holds .*Payload"),
        (lambda p: torch.save({"format": 1}, p), "not a model artifact"),
        (lambda p: torch.save({"format": 3, "builder": "cnn_tiny"}, p), "does not rebuild"),
    ],
    ids=["truncated", "garbage", "pickled-code", "other-format", "incomplete"],
)
def test_a_damaged_file_is_one_line_naming_it_and_never_unpickled(saved, damage, says):
    _, path = saved
    damage(path)
    with pytest.raises(BrokenArtifact, match=says) as err:
        load_model_file(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only=False" not in message  # torch's own hint: never ours
