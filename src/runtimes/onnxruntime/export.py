"""Export for ONNX Runtime: a model (an int8 variant's float twin) as the file the runtime runs.

:func:`exportable_twin` gives the exporter plain torch modules: what a model family registered an
exportable form for (:mod:`src.models.export`: a static variant's decomposed GRU, one ``nn.GRU``
again) is replaced by it. :func:`export_onnx` writes the file with torch's maintained (dynamo)
exporter. :mod:`src.runtimes.onnxruntime.session` opens it; int8 variants are first quantized by
ORT (:mod:`src.runtimes.onnxruntime.quantize`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from src.core.errors import first_line
from src.models.export import rewrite_for_export
from src.quant.deploy import Twin
from src.quant.pt2e import plain_linears
from src.runtimes.base import RuntimeUnavailable
from src.runtimes.onnxruntime.gru_op import TRANSLATIONS, with_onnx_grus

# The exporter's IR passes log every pass at INFO; a run's log keeps its own phases readable.
for _name in ("onnx_ir", "onnxscript"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class OnnxExport:
    """A finished export: the file, its size and how long exporting took."""

    path: Path
    size_mb: float
    seconds: float


def two_rows(example: torch.Tensor) -> torch.Tensor:
    """``example`` with a batch of at least 2: torch.export specializes a dimension of size 1
    (its 0/1 rule), so from a batch-of-one example DyAD's export comes out with its batch fixed
    at 1 (before its GRUs were one op, it failed in ``torch.while_loop``'s stride check); the
    rows repeat, the graph is the same."""
    if example.shape[0] >= 2:
        return example
    return example.expand(2, *example.shape[1:]).contiguous()


def export_onnx(
    model: nn.Module, example: torch.Tensor, path: str | Path, optimize: bool = False
) -> OnnxExport:
    """Export ``model`` (eval mode) with a dynamic batch dimension to ``path``, each
    ``nn.GRU`` as ONNX ``GRU`` nodes written directly (:mod:`.gru_op`: seconds, not a minute).

    ``optimize`` runs onnxscript's optimizer (constant folding: weights computed by nodes become
    initializers, as ORT's own quantizers expect); ONNX Runtime does the same at session start,
    so a file only run, or quantized here by name, does not need it.

    The file is written beside ``path`` under a temporary name and renamed when complete, so a
    failed or interrupted export never leaves a file that passes for a finished one.

    Raises:
        RuntimeUnavailable: The exporter cannot express the model (the reason in one line).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = two_rows(example)
    was_training = model.training
    started = time.perf_counter()
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        program = torch.onnx.export(
            with_onnx_grus(model.eval()),
            (example,),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            optimize=optimize,
            verbose=False,
            custom_translation_table=TRANSLATIONS,
        )
        program.save(partial)
        os.replace(partial, path)
    except Exception as err:  # the exporter raises many types; one line says which op failed
        raise RuntimeUnavailable(
            f"onnx export of {type(model).__name__} failed: {first_line(err)}"
        ) from err
    finally:
        model.train(was_training)
        Path(partial).unlink(missing_ok=True)
    return OnnxExport(path, path.stat().st_size / 1e6, time.perf_counter() - started)


def exportable_twin(twin: Twin) -> Twin:
    """``twin`` (changed in place) with every module whose family registered an exportable form
    replaced by it, its twinned projections first back to plain ``nn.Linear``. A replaced module
    that held int8 modules is int8 itself, and named in ``int8_grus``: exported, it is one node
    (``GRU``) that the quantizer unrolls to reach its projections.

    Raises:
        RuntimeUnavailable: A module whose rewrite cannot read it (the reason in one line).
    """
    try:
        model, names = rewrite_for_export(twin.model, prepare=_plain_projections)
    except TypeError as err:
        raise RuntimeUnavailable(f"no exportable form: {first_line(err)}") from err
    modules, grus = list(twin.int8_modules), list(twin.int8_grus)
    for name in names:
        prefix = f"{name}." if name else ""
        inside = [m for m in modules if m.startswith(prefix)]
        if inside:
            modules = [m for m in modules if m not in inside] + [name]
            grus.append(name)
    return Twin(model, twin.mode, modules, grus)


def _plain_projections(module: nn.Module) -> None:
    """Inside ``module``, in place: a twinned projection (``MatMulLinear``, maybe between the
    identity stubs of a static variant) as the ``nn.Linear`` of the same weights."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, nn.Sequential):
                continue
            inner = [m for m in child if not isinstance(m, nn.Identity)]
            if len(inner) == 1:
                setattr(parent, name, inner[0])
    plain_linears(module)
