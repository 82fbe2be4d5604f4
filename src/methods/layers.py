"""Per-layer treatments: every weight-bearing layer of a model, quantized or pruned on its own.

Layers are named as in the model with its GRUs decomposed (:mod:`src.models.gru`): each GRU
direction's input and hidden projections (``encoder_rnn.cells.0.ih``, ``...cells.0.hh``), each
Linear, each conv. A treatment changes the named layers and nothing else, so the change of a
tuning figure it causes is that layer's sensitivity (Distiller's per-layer analysis); mixed
precision and sensitivity-allocated pruning are built from the same treatments.

Example:
    >>> model = decomposed(baseline)
    >>> names = [layer.name for layer in weight_layers(model)]
    >>> int8 = quantize_layers(model, names[:3], Scheme("static"), data)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import prune

from src.core.errors import ConfigError
from src.methods.base import CALIBRATION_BATCHES, OBSERVER
from src.methods.static import calibrate
from src.models.gru import DecomposedGRU, decompose_grus, to_gru
from src.quant import backend

SCHEMES = ("dynamic", "static")
PRUNE = "prune"


@dataclass(frozen=True)
class Layer:
    """One weight-bearing layer: its module name, kind and weight count.

    ``kind`` is ``gru.ih`` / ``gru.hh`` (a GRU direction's input / hidden projection),
    ``linear`` or ``conv``.
    """

    name: str
    kind: str
    params: int

    def takes(self, treatment: str) -> bool:
        """Dynamic int8 has no conv kernel worth having on x86 (slower than fp32); the rest
        applies to every layer."""
        return not (treatment == "dynamic" and self.kind == "conv")


@dataclass(frozen=True)
class Scheme:
    """How layers are quantized: ``dynamic`` or ``static`` int8, and static's calibration."""

    kind: str = "dynamic"
    observer: str = OBSERVER
    per_channel: bool = True
    calibration_batches: int = CALIBRATION_BATCHES

    def __post_init__(self) -> None:
        if self.kind not in SCHEMES:
            raise ConfigError(f"quantization scheme {self.kind!r}; choose one of {SCHEMES}")
        if self.observer not in backend.OBSERVERS:
            raise ConfigError(
                f"observer {self.observer!r}; choose one of {sorted(backend.OBSERVERS)}"
            )
        if int(self.calibration_batches) < 1:
            raise ConfigError(f"calibration_batches={self.calibration_batches} must be >= 1")


def decomposed(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose GRUs are decomposed into Linear projections."""
    return decompose_grus(copy.deepcopy(model).eval())


def weight_layers(model: nn.Module) -> list[Layer]:
    """The weight-bearing layers of a :func:`decomposed` model, in module order."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            kind = "conv"
        elif isinstance(module, nn.Linear):
            kind = f"gru.{name.rsplit('.', 1)[-1]}" if _in_gru(model, name) else "linear"
        else:
            continue
        found.append(Layer(name, kind, int(module.weight.numel())))
    return found


def _in_gru(model: nn.Module, name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 3 and isinstance(model.get_submodule(".".join(parts[:-3])), DecomposedGRU)


def quantize_layers(model: nn.Module, names: Iterable[str], scheme: Scheme, data=None) -> nn.Module:
    """``model`` (decomposed; changed in place or replaced) with the named layers in int8.

    Dynamic: a decomposed GRU whose projections are all named goes back to one ``nn.GRU``,
    quantized as PyTorch's fused int8 GRU (the fast kernel), the rest Linear by Linear. Static:
    quant/dequant stubs around each named layer, calibrated on ``data``'s calibration batches
    (``data=None``: the structure only, to load saved weights into).
    """
    names = list(names)
    if scheme.kind == "dynamic":
        names = _fuse_whole_grus(model, names)
        return backend.quantize_dynamic_modules(model, names, "int8")
    if not names:
        return model
    qconfig = backend.qconfig(scheme.observer, scheme.per_channel)
    prepared = backend.prepare_static(model, names, qconfig, qat=False)
    if data is not None:
        calibrate(prepared, data.calibration_dataloader(), int(scheme.calibration_batches))
    return backend.convert(prepared)


def _fuse_whole_grus(model: nn.Module, names: list[str]) -> list[str]:
    """Recompose each decomposed GRU all of whose projections are in ``names``; the names with
    those projections replaced by the GRU's own."""
    chosen = set(names)
    for gru_name, gru in list(model.named_modules()):
        if not isinstance(gru, DecomposedGRU):
            continue
        projections = {
            f"{gru_name}.cells.{i}.{p}" for i in range(len(gru.cells)) for p in ("ih", "hh")
        }
        if projections <= chosen:
            parent, _, child = gru_name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, to_gru(gru))
            chosen = (chosen - projections) | {gru_name}
    return sorted(chosen)


def prune_layer(model: nn.Module, name: str, sparsity: float) -> nn.Module:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights of one layer, in place."""
    module = model.get_submodule(name)
    prune.l1_unstructured(module, "weight", amount=float(sparsity))
    prune.remove(module, "weight")
    return model


def treat(model: nn.Module, layer: Layer, treatment: str, data=None, scheme=None) -> nn.Module:
    """A copy of decomposed ``model`` with ``layer`` alone treated: ``dynamic`` / ``static``
    int8 or ``prune:<sparsity>``."""
    copied = copy.deepcopy(model)
    if treatment.startswith(f"{PRUNE}:"):
        return prune_layer(copied, layer.name, float(treatment.split(":", 1)[1]))
    scheme = scheme or Scheme(treatment)
    if scheme.kind != treatment:
        scheme = Scheme(treatment, scheme.observer, scheme.per_channel, scheme.calibration_batches)
    return quantize_layers(copied, [layer.name], scheme, data)


def scan(
    model: nn.Module,
    layers: list[Layer],
    treatment: str,
    score: Callable[[nn.Module], dict[str, float]],
    data=None,
    scheme: Scheme | None = None,
) -> dict[str, dict[str, float]]:
    """``score`` of ``model`` with each layer treated alone (layers that do not take the
    treatment are left out), by layer name."""
    return {
        layer.name: score(treat(model, layer, treatment, data, scheme))
        for layer in layers
        if layer.takes(treatment.split(":")[0])
    }
