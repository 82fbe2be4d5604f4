"""DecomposedGRU equals nn.GRU and opens it to quantization: ``pytest tests/models/test_gru.py``."""

import copy
import itertools

import pytest
import torch
import torch.ao.quantization as tq
from torch import nn

from src.core.threads import torch_threads
from src.models import create_model
from src.models.gru import (
    DecomposedGRU,
    GRUProjections,
    decompose_grus,
    from_gru,
    recompose_grus,
    to_gru,
)

TOL = dict(atol=1e-5, rtol=1e-5)
GRID = list(itertools.product([1, 2], [False, True], [False, True], [True, False]))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny per-step ops: intra-op threads only add sync cost (x50 when the CPU is shared)."""
    with torch_threads(1):
        yield


def _pair(num_layers=1, bidirectional=False, batch_first=False, bias=True, seed=0, **kw):
    torch.manual_seed(seed)
    gru = nn.GRU(5, 6, num_layers, bias, batch_first, bidirectional=bidirectional, **kw)
    return gru, from_gru(gru)


def _inputs(gru, seq_len, batch=3, with_h0=True):
    shape = (batch, seq_len, 5) if gru.batch_first else (seq_len, batch, 5)
    directions = 2 if gru.bidirectional else 1
    h0 = torch.randn(gru.num_layers * directions, batch, 6) if with_h0 else None
    return torch.randn(shape), h0


@pytest.mark.parametrize("seq_len", [1, 128])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias", GRID)
def test_matches_nn_gru(num_layers, bidirectional, batch_first, bias, with_h0, seq_len):
    gru, dec = _pair(num_layers, bidirectional, batch_first, bias)
    x, h0 = _inputs(gru, seq_len, with_h0=with_h0)
    want_out, want_h = gru(x, h0)
    got_out, got_h = dec(x, h0)
    assert got_out.shape == want_out.shape and got_h.shape == want_h.shape
    torch.testing.assert_close(got_out, want_out, **TOL)
    torch.testing.assert_close(got_h, want_h, **TOL)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, True)])
def test_gradients_match_nn_gru(num_layers, bidirectional):
    gru, dec = _pair(num_layers, bidirectional, batch_first=True)
    x, h0 = _inputs(gru, seq_len=20)
    grads = []
    for module in (gru, dec):
        xg, hg = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, h_n = module(xg, hg)
        torch.manual_seed(1)  # the same random projection of both outputs
        loss = (out * torch.randn_like(out)).sum() + (h_n * torch.randn_like(h_n)).sum()
        loss.backward()
        grads.append((xg.grad, hg.grad))
    for got, want in zip(grads[1], grads[0], strict=True):  # w.r.t. x, then h0
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    _assert_weight_grads_match(gru, dec)


def _assert_weight_grads_match(gru, dec):
    d = dec.num_directions
    for idx, cell in enumerate(dec.cells):
        layer, rev = divmod(idx, d)
        sfx = f"l{layer}{'_reverse' if rev else ''}"
        for proj, kind in ((cell.ih, "ih"), (cell.hh, "hh")):
            for attr in ("weight", "bias"):
                want = getattr(gru, f"{attr}_{kind}_{sfx}").grad
                torch.testing.assert_close(getattr(proj, attr).grad, want, atol=1e-4, rtol=1e-4)


def test_unbatched_input_matches_nn_gru():
    gru, dec = _pair(num_layers=2, bidirectional=True, batch_first=True)
    x, h0 = torch.randn(9, 5), torch.randn(4, 6)
    for got, want in zip(dec(x, h0), gru(x, h0), strict=True):
        torch.testing.assert_close(got, want, **TOL)


def test_rejects_bad_shapes():
    _, dec = _pair(num_layers=2)
    with pytest.raises(ValueError, match="h0 must have shape"):
        dec(torch.randn(4, 3, 5), torch.randn(1, 3, 6))
    with pytest.raises(ValueError, match="expects a non-empty input"):
        dec(torch.randn(4, 3, 7))


def test_dropout_only_in_training():
    gru, dec = _pair(num_layers=2, dropout=0.5)
    x, h0 = _inputs(gru, seq_len=10)
    torch.testing.assert_close(dec.eval()(x, h0)[0], gru.eval()(x, h0)[0], **TOL)
    dec.train()
    assert not torch.allclose(dec(x, h0)[0], dec(x, h0)[0])


def test_round_trip_is_exact_and_keeps_dtype_and_mode():
    torch.manual_seed(0)
    gru = nn.GRU(5, 6, 2, bidirectional=True, dropout=0.25, dtype=torch.float64).train()
    dec = from_gru(gru)
    assert dec.training and dec.cells[0].ih.weight.dtype == torch.float64
    back = to_gru(dec)
    assert type(back) is nn.GRU and back.training and back.dropout == 0.25
    assert back.state_dict().keys() == gru.state_dict().keys()
    for key, value in gru.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_to_gru_rejects_replaced_projections():
    _, dec = _pair()
    dec.cells[0].hh = nn.Sequential(tq.QuantStub(), dec.cells[0].hh, tq.DeQuantStub())
    with pytest.raises(TypeError, match=r"cells\.0\.hh is Sequential"):
        to_gru(dec)


class _Nested(nn.Module):
    """GRUs at several depths, in every container kind, one of them shared by two parents."""

    def __init__(self):
        super().__init__()
        shared = nn.GRU(5, 6, batch_first=True)
        self.top = nn.GRU(5, 5, batch_first=True, bidirectional=True)
        self.seq = nn.Sequential(nn.Identity(), nn.ModuleDict({"g": nn.GRU(10, 4, 2)}))
        self.lst = nn.ModuleList([shared, nn.Sequential(shared)])

    def forward(self, x):
        y, _ = self.top(x)
        y, _ = self.seq[1]["g"](y.transpose(0, 1))
        a, _ = self.lst[0](x)
        b, _ = self.lst[1][0](x)
        return y.sum() + a + b


def test_decompose_and_recompose_nested_model():
    torch.manual_seed(0)
    model = _Nested()
    x = torch.randn(2, 7, 5)
    want = model(x)
    assert decompose_grus(model) is model
    assert not any(isinstance(m, nn.GRU) for m in model.modules())
    assert sum(isinstance(m, DecomposedGRU) for m in model.modules()) == 3  # shared counted once
    assert model.lst[0] is model.lst[1][0]
    torch.testing.assert_close(model(x), want, **TOL)
    recompose_grus(model)
    assert not any(isinstance(m, DecomposedGRU) for m in model.modules())
    assert type(model.seq[1]["g"]) is nn.GRU and model.lst[0] is model.lst[1][0]
    torch.testing.assert_close(model(x), want, **TOL)


def test_decompose_a_bare_gru_returns_the_replacement():
    gru, _ = _pair()
    assert isinstance(decompose_grus(gru), DecomposedGRU)


@pytest.mark.parametrize("name,batch", [("dyad_tiny", 6), ("dyad_brand1", 2)])
def test_dyad_predictions_unchanged(name, batch):
    torch.manual_seed(0)
    model = create_model(name).eval()
    dec = decompose_grus(copy.deepcopy(model))
    assert isinstance(dec.encoder_rnn, DecomposedGRU) and isinstance(dec.decoder_rnn, DecomposedGRU)
    x = torch.randn(batch, 128, 7)
    with torch.no_grad():
        torch.testing.assert_close(dec(x).prediction, model(x).prediction, **TOL)


def _wrap_projections(model, qconfig):
    """Wrap each GRU projection in Quant/DeQuantStubs; only those carry a qconfig."""
    for cell in [m for m in model.modules() if isinstance(m, GRUProjections)]:
        for name in ("ih", "hh"):
            wrapped = nn.Sequential(tq.QuantStub(), getattr(cell, name), tq.DeQuantStub())
            wrapped.qconfig = qconfig
            setattr(cell, name, wrapped)
    return model


def _assert_projections_quantized(model):
    cells = [m for m in model.modules() if isinstance(m, GRUProjections)]
    assert len(cells) == 4  # encoder and decoder, two directions each
    for cell in cells:
        for wrapped in (cell.ih, cell.hh):
            assert type(wrapped[1]) is torch.ao.nn.quantized.Linear
            assert wrapped[1].weight().dtype == torch.qint8
    assert type(model.hidden2mean) is nn.Linear  # nothing outside the GRUs was touched


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*(reduce_range|quantized tensor creation):UserWarning")
def test_static_quantization_reaches_the_gru():
    torch.manual_seed(0)
    model = decompose_grus(create_model("dyad_tiny")).eval()
    x = torch.randn(8, 128, 7)
    with torch.no_grad():
        want = model(x).prediction
        _wrap_projections(model, tq.get_default_qconfig("x86"))
        tq.prepare(model, inplace=True)
        for _ in range(3):
            model(torch.randn(8, 128, 7))
        tq.convert(model, inplace=True)
        got = model(x).prediction
    _assert_projections_quantized(model)
    assert got.shape == want.shape
    # int8 projections: the error stays far below the output's spread (observed 0.04 std).
    assert (got - want).abs().max() < 0.1 * want.std()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*(reduce_range|quantized tensor creation):UserWarning")
def test_qat_smoke():
    torch.manual_seed(0)
    model = decompose_grus(create_model("dyad_tiny")).train()
    _wrap_projections(model, tq.get_default_qat_qconfig("x86"))
    tq.prepare_qat(model, inplace=True)
    out = model(torch.randn(4, 128, 7))
    out.prediction.pow(2).mean().backward()
    fake_quantized = model.encoder_rnn.cells[0].hh[1]
    assert isinstance(fake_quantized, torch.ao.nn.qat.Linear)
    assert fake_quantized.weight.grad is not None and fake_quantized.weight.grad.abs().sum() > 0
    model.eval()
    tq.convert(model, inplace=True)
    _assert_projections_quantized(model)
    with torch.no_grad():
        assert model(torch.randn(2, 128, 7)).prediction.shape == (2, 128, 5)
