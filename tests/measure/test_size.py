"""Size metrics and quantization-aware weight counts: ``pytest tests/measure/test_size.py``."""

import copy
import gzip

import pytest
import torch
from torch import nn
from torch.ao import quantization as tq
from torch.nn.utils import prune

from src.measure import count_weights, size_metrics, state_dict_bytes
from tests.quant.nets import GruNet

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(x)))), 1))


def test_size_mb_is_the_saved_state_dict_file(tmp_path):
    model = mlp()
    # torch.save names the zip's inner folder after the file stem; a buffer gets "archive".
    path = tmp_path / "archive.pt"
    torch.save(model.state_dict(), path)
    metrics = size_metrics(model)
    assert set(metrics) == {"size/mb", "size/mb_gzip", "size/params", "size/nonzero"}
    assert metrics["size/mb"] == path.stat().st_size / 1e6
    assert state_dict_bytes(model) == path.read_bytes()


def test_other_file_names_change_the_size_only_by_zip_headers(tmp_path):
    model = nn.Linear(256, 256)
    path = tmp_path / "a_much_longer_checkpoint_name.pt"
    torch.save(model.state_dict(), path)
    assert abs(path.stat().st_size - len(state_dict_bytes(model))) < 1000


def test_gzip_shrinks_a_mostly_zero_model_and_matches_level_9():
    model = nn.Linear(200, 200)
    with torch.no_grad():
        model.weight[:, 20:] = 0  # 90 % zeros
    metrics = size_metrics(model)
    raw = state_dict_bytes(model)
    assert metrics["size/mb_gzip"] == len(gzip.compress(raw, compresslevel=9)) / 1e6
    assert metrics["size/mb_gzip"] < 0.5 * metrics["size/mb"]


def test_ratio_is_bytes_over_baseline_and_only_present_with_a_baseline():
    big, small = nn.Linear(64, 64), nn.Linear(64, 8)
    baseline = len(state_dict_bytes(big))
    metrics = size_metrics(small, baseline_bytes=baseline)
    assert metrics["size/ratio"] == pytest.approx(len(state_dict_bytes(small)) / baseline)
    assert metrics["size/ratio"] < 1
    assert size_metrics(big, baseline_bytes=baseline)["size/ratio"] == 1.0
    with pytest.raises(ValueError, match="baseline_bytes"):
        size_metrics(small, baseline_bytes=0)


def test_plain_mlp_counts_its_parameters():
    model = mlp()
    assert count_weights(model) == (numel(model), numel(model))


def test_batchnorm_affine_counts_but_running_stats_do_not():
    model = SmallCnn()
    total, _ = count_weights(model)
    assert total == numel(model) == (8 * 3 * 9 + 8) + (8 + 8) + (8 * 5 + 5)


def test_dynamic_int8_gru_and_linear_keep_the_fp32_count():
    model = GruNet().eval()
    quantized = tq.quantize_dynamic(copy.deepcopy(model), {nn.Linear, nn.GRU}, dtype=torch.qint8)
    assert numel(quantized) == 0  # the naive count this module exists to fix
    total, nonzero = count_weights(quantized)
    assert total == numel(model)
    assert nonzero > 0.9 * total
    assert quantized(torch.randn(2, 5, 6)).shape == (2, 5, 6)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRUCell, nn.LSTMCell])
def test_other_dynamic_recurrent_modules_keep_their_count(cls):
    model = nn.Sequential(cls(6, 10))
    for dtype in (torch.qint8, torch.float16):
        quantized = tq.quantize_dynamic(copy.deepcopy(model), {cls}, dtype=dtype)
        assert count_weights(quantized)[0] == numel(model), dtype


def test_dynamic_fp16_gru_keeps_the_fp32_count():
    model = GruNet()
    quantized = tq.quantize_dynamic(copy.deepcopy(model), {nn.Linear, nn.GRU}, dtype=torch.float16)
    assert count_weights(quantized)[0] == numel(model)


def test_static_quantized_fused_cnn_matches_fused_fp32_count():
    torch.manual_seed(0)
    model = SmallCnn().eval()
    fused = tq.fuse_modules(model, [["conv", "bn", "relu"]])
    expected = count_weights(fused)
    assert expected[0] == (8 * 3 * 9 + 8) + (8 * 5 + 5)  # BN folded into the conv bias
    wrapped = tq.QuantWrapper(copy.deepcopy(fused))
    wrapped.qconfig = tq.get_default_qconfig("x86")
    prepared = tq.prepare(wrapped)
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(8, 3, 12, 12))
    quantized = tq.convert(prepared)
    assert type(quantized.module.conv).__name__ == "ConvReLU2d"
    assert numel(quantized) == 0
    assert count_weights(quantized)[0] == expected[0]


def test_qat_prepared_model_does_not_count_fake_quant_state():
    model = mlp().train()
    model.qconfig = tq.get_default_qat_qconfig("x86")
    prepared = tq.prepare_qat(model)
    assert count_weights(prepared)[0] == numel(mlp())


def test_zeroing_half_a_linear_drops_the_nonzero_count():
    model = mlp()
    total, nonzero = count_weights(model)
    with torch.no_grad():
        model[0].weight[:8] = 0  # half of the 32 x 16 rows
    assert count_weights(model) == (total, nonzero - 8 * 16)


def test_zeroed_weights_stay_zero_after_dynamic_quantization():
    model = mlp()
    with torch.no_grad():
        model[0].weight[:8] = 0
    quantized = tq.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    total, nonzero = count_weights(quantized)
    assert total == numel(model)
    # Tiny weights may also round to zero in int8, so only an upper bound is exact.
    assert nonzero <= total - 8 * 16


def test_pruned_module_counts_the_masked_weight_once():
    model = mlp()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    total, nonzero = count_weights(model)
    assert total == numel(mlp())
    assert nonzero == numel(mlp()) - 32 * 16 // 2


def test_tied_weights_count_once():
    first = nn.Linear(8, 8)
    second = nn.Linear(8, 8)
    second.weight = first.weight
    assert count_weights(nn.Sequential(first, second))[0] == 64 + 8 + 8
