"""Every method on both families, in process: ``pytest tests/methods/test_methods.py``."""

import io

import pytest
import torch

from src.measure.precision import coverage_report
from src.methods import MethodContext, apply_method, method_config, rebuild
from src.models import create_model
from src.models.util import input_dtype
from src.quant.state import load_portable_state_dict, portable_state_dict

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

FAMILIES = {"dyad_tiny": (16, 128, 7), "cnn_tiny": (16, 3, 32, 32)}
METHODS = [
    {"name": "dynamic"},
    {"name": "dynamic", "dtype": "fp16"},
    {"name": "static"},
    {"name": "static", "observer": "minmax", "per_channel": False},
    {"name": "qat"},
    {"name": "fp16", "kind": "half", "dtype": "fp16"},
    {"name": "bf16", "kind": "half", "dtype": "bf16"},
]
INT8_EVERYWHERE = {"static", "qat"}


class _Data:
    def __init__(self, shape):
        g = torch.Generator().manual_seed(0)
        self.batches = [{"x": torch.randn(*shape, generator=g)} for _ in range(4)]

    def calibration_dataloader(self):
        return self.batches


def _fine_tuner(shape):
    """A stand-in for the task's training: a few steps on a reconstruction-like loss."""

    def fine_tune(model, epochs, lr):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        model.train()
        for batch in _Data((4, *shape[1:])).batches[:2]:
            out = model(batch["x"])
            loss = (out.prediction if hasattr(out, "prediction") else out).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return fine_tune


def _out(model, x):
    with torch.inference_mode():
        y = model.eval()(x.to(input_dtype(model)))
    return (y.prediction if hasattr(y, "prediction") else y).float()


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("values", METHODS, ids=lambda v: "-".join(map(str, v.values())))
def test_method_runs_stays_close_and_reloads(name, values):
    shape = FAMILIES[name]
    torch.manual_seed(0)
    model = create_model(name).eval()
    config = method_config(values)
    compressed = apply_method(model, config, MethodContext(_Data(shape), _fine_tuner(shape)))
    x = _Data(shape).batches[0]["x"]
    reference, got = _out(model, x), _out(compressed, x)
    if values["name"] != "qat":  # QAT fine-tuned the weights: only its own reload is compared
        assert (got - reference).abs().max() < 0.25 * reference.std() + 1e-3
    _, int8 = coverage_report(compressed)
    if values["name"] in INT8_EVERYWHERE or (values == {"name": "dynamic"} and name == "dyad_tiny"):
        assert int8 == 1.0
    buffer = io.BytesIO()
    torch.save(portable_state_dict(compressed), buffer)
    buffer.seek(0)
    reloaded = rebuild(create_model(name).eval(), config)
    load_portable_state_dict(reloaded, torch.load(buffer, weights_only=True))
    assert torch.equal(_out(reloaded, x), got)
    assert all(
        p is not q for p, q in zip(model.parameters(), compressed.parameters(), strict=False)
    )


def test_qat_result_is_a_real_int8_model():
    shape = FAMILIES["dyad_tiny"]
    context = MethodContext(_Data(shape), _fine_tuner(shape))
    qat = apply_method(create_model("dyad_tiny").eval(), method_config({"name": "qat"}), context)
    quantized = [
        m
        for m in qat.modules()
        if type(m).__module__.startswith("torch.ao.nn.quantized")
        and hasattr(m, "weight")
        and callable(m.weight)
    ]
    assert len(quantized) == 14  # 2 GRUs x 2 directions x (ih, hh) + 6 head Linears
    assert all(m.weight().dtype == torch.qint8 for m in quantized)
    assert not any(type(m).__name__.startswith("FakeQuantize") for m in qat.modules())
    assert sum(p.numel() for p in qat.parameters() if p.is_floating_point()) == 0


def test_dynamic_int8_on_dyad_quantizes_the_grus():
    model = apply_method(
        create_model("dyad_tiny"), method_config({"name": "dynamic"}), MethodContext()
    )
    table, fraction = coverage_report(model)
    assert set(table.precision) == {"int8"} and fraction == 1.0
    assert {"encoder_rnn", "decoder_rnn"} <= set(table.module)


def test_dynamic_on_the_cnn_leaves_convs_fp32_and_says_so():
    table, fraction = coverage_report(
        apply_method(create_model("cnn_tiny"), method_config({"name": "dynamic"}), MethodContext())
    )
    assert 0 < fraction < 1
    assert set(table[table.module.str.contains("conv")].precision) == {"fp32"}
