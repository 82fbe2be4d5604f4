"""``+method=prune`` in process: ``pytest tests/methods/test_prune.py``."""

import pytest
import torch

from src.core.errors import ConfigError
from src.measure.report import size_of
from src.methods import MethodContext, apply_method, method_config
from src.methods.prune import prunable, schedule
from src.models import create_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _weights(model):
    return torch.cat([getattr(m, n).detach().flatten() for m, n in prunable(model)])


def _prune(name, **values):
    torch.manual_seed(0)
    model = create_model(name).eval()
    calls = []
    context = MethodContext(fine_tune=lambda m, epochs, lr: calls.append((epochs, lr)))
    return model, apply_method(model, method_config({"name": "prune", **values}), context), calls


def test_schedule_is_cubic_and_ends_on_target():
    assert schedule(0.5, 1) == [0.5]
    steps = schedule(0.8, 4)
    assert steps[-1] == pytest.approx(0.8) and steps == sorted(steps)
    assert steps[0] > 0.8 / 4  # cubic: most pruning early, gentle at the end


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("rounds", [1, 3])
def test_unstructured_hits_the_sparsity_and_is_permanent(scope, rounds):
    original, pruned, calls = _prune("dyad_tiny", sparsity=0.6, scope=scope, rounds=rounds)
    zeros = (_weights(pruned) == 0).float().mean().item()
    assert zeros == pytest.approx(0.6, abs=0.01)
    assert len(calls) == rounds
    assert not any(n.endswith(("_orig", "_mask")) for n, _ in pruned.state_dict().items())
    assert (_weights(original) != 0).all()  # the baseline is untouched
    if scope == "layer":
        for module, name in prunable(pruned):
            weight = getattr(module, name)
            if weight.numel() >= 50:  # tiny heads round to whole weights
                assert (weight == 0).float().mean().item() == pytest.approx(0.6, abs=0.05)


def test_unstructured_rows_report_the_dense_file_honestly():
    original, pruned, _ = _prune("cnn_tiny", sparsity=0.9)
    before, after = size_of(original), size_of(pruned, original)
    assert after["size/ratio"] == pytest.approx(1.0, abs=0.01)  # dense zeros: no smaller file
    assert after["size/nonzero"] < 0.2 * after["size/params"]
    assert after["size/mb_gzip"] < 0.5 * before["size/mb_gzip"]
    assert after["size/mb_sparse"] < 0.5 * after["size/mb"]
    assert before["size/mb_sparse"] == pytest.approx(before["size/mb"], rel=0.05)


def test_structured_prunes_to_a_smaller_model_of_the_same_class():
    original, pruned, calls = _prune("dyad_tiny", structured=True, sparsity=0.5, epochs=2)
    assert type(pruned) is type(original) and pruned.config.hidden_size == 4
    assert calls == [(2, 1e-3)]
    count = sum(p.numel() for p in pruned.parameters())
    assert count < 0.5 * sum(p.numel() for p in original.parameters())


def test_structured_iterative_reaches_the_target_width():
    _, pruned, calls = _prune("cnn_tiny", structured=True, sparsity=0.5, rounds=2, epochs=0)
    assert pruned.config.widths == [4, 8] and pruned.config.hidden == 16
    assert calls == []  # epochs=0: one-shot, no fine-tuning


@pytest.mark.parametrize(
    "values",
    [{"sparsity": 1.0}, {"sparsity": 0}, {"scope": "net"}, {"rounds": 0}, {"lr": 2}],
    ids=str,
)
def test_bad_values_name_the_key(values):
    with pytest.raises(ConfigError, match="method\\."):
        method_config({"name": "prune", **values})
