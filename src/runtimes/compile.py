"""The ``compile`` runtime: ``torch.compile`` (inductor, freezing), int8 through PT2E.

A float variant is compiled as it is. An eager int8 variant (torch.ao's packed modules, which
dynamo cannot trace) runs as PyTorch's maintained int8 form of the same method: its float twin,
re-quantized by PT2E with the x86 inductor quantizer in its own mode (:mod:`src.quant.pt2e`), then
compiled, so inductor lowers every int8 module to oneDNN's ``qlinear`` / ``qconv``. What a model
family says cannot be compiled in int8 (:mod:`src.models.export`; the GRUs: PT2E has no int8 GRU,
and a decomposed GRU's unrolled time loop takes inductor minutes per batch size) is one skipped
line here (ONNX Runtime runs it in int8).

Kernels are counted in the code inductor generated, so a silent fp32 fallback shows.
"""

from __future__ import annotations

import re
import shutil
import warnings

import torch
from torch import nn

from src.core.errors import first_line
from src.models.export import int8_compile_problem
from src.quant.deploy import float_twin
from src.quant.pt2e import plain_linears, quantize_pt2e
from src.runtimes.base import (
    BehindEager,
    DeployContext,
    Deployed,
    RuntimeUnavailable,
    check_float_weights,
    register_runtime,
)

INT8_KERNEL = re.compile(r"torch\.ops\.onednn\.q(?:linear|conv)\w*\.\w+\(")
# inductor's own oneDNN lowering warns at every (re)compile; nothing a user can change
warnings.filterwarnings(
    "ignore", "To copy construct", UserWarning, "torch._inductor.mkldnn_lowerings"
)
FLOAT_KERNEL = re.compile(
    r"(?:extern_kernels\.(?:mm|addmm|bmm|convolution)|torch\.ops\.mkl\._mkl_linear\.\w+"
    r"|torch\.ops\.mkldnn\.\w+\.\w+|torch\.ops\.aten\.(?:gru|lstm|mkldnn_rnn_layer)\.\w+)\("
)


class Compiled(BehindEager):
    """A compiled callable behind the eager model's interface."""

    def __init__(self, program, eager: nn.Module) -> None:
        super().__init__(eager)
        object.__setattr__(self, "_program", program)  # not a submodule: never re-traced

    def forward(self, x: torch.Tensor):
        return object.__getattribute__(self, "_program")(x)


@register_runtime("compile")
def deploy(model: nn.Module, context: DeployContext) -> Deployed:
    """``torch.compile`` (inductor, freezing); an int8 variant as PT2E int8 of its float twin,
    compiled here on the example batch."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise RuntimeUnavailable("torch.compile's inductor needs a C++ compiler (g++) on PATH")
    check_float_weights(model, "torch.compile's CPU inductor")
    module, int8, floats, form = compile_variant(model, context.example, context.calibration)
    return Deployed(module, None, int8, floats, form)


def compile_variant(model: nn.Module, example: torch.Tensor, calibration) -> tuple:
    """``(module, int8 kernels, float kernels, form)``: ``model`` compiled (int8 variants through
    PT2E), run once on ``example`` so a failure is one line now, not in the middle of timing.

    Raises:
        RuntimeUnavailable: dynamo, PT2E or inductor could not take the model.
    """
    twin = float_twin(model)
    if twin.mode is None:
        program, form = model.eval(), "torch.compile (inductor, freezing)"
    else:
        _check_compilable(twin)
        plain_linears(twin.model)
        try:
            program = quantize_pt2e(twin, example, calibration)
        except Exception as err:  # export / torchao raise many types
            raise RuntimeUnavailable(
                f"PT2E {twin.mode} quantization failed: {first_line(err)}"
            ) from err
        form = f"torch.compile PT2E x86 {twin.mode} int8"
    module, code, breaks = _compile(program, example, dynamic=twin.mode is None)
    int8, floats = len(INT8_KERNEL.findall(code)), len(FLOAT_KERNEL.findall(code))
    if breaks:  # e.g. nn.GRU, which dynamo leaves to eager: say so, the kernels miss it
        form += f", {breaks} graph break(s) run in eager"
    return Compiled(module, model), int8, floats, form


def _check_compilable(twin) -> None:
    """An int8 variant holding what its model family says torch.compile should not take
    (:mod:`src.models.export`) is a one-line skip; ONNX Runtime runs it instead."""
    problem = int8_compile_problem(twin.model, twin.int8_modules)
    if problem is not None:
        raise RuntimeUnavailable(f"{problem}; use the onnxruntime runtime for this variant")


def _compile(program, example: torch.Tensor, dynamic: bool):
    """(compiled callable, inductor's generated code, graph breaks).

    A float model gets a symbolic batch size: one compile serves every batch. A PT2E int8 model
    compiles once per batch size, because inductor's int8 lowerings fail under a symbolic batch
    (qconv asserts wrong strides; dynamic qlinear builds ``torch.Size`` from graph nodes).
    Freezing is set process-wide, as PyTorch's PT2E x86 tutorial does: a recompile without it
    cannot prepack PT2E's int8 weights (inductor's ``options`` dict does not reach that pass).
    """
    from torch._dynamo.utils import counters
    from torch._inductor import config
    from torch._inductor.utils import run_and_get_code

    config.freezing = True
    breaks = _breaks(counters)
    module = torch.compile(program, dynamic=dynamic)
    try:
        with torch.inference_mode():
            _, codes = run_and_get_code(module, example)
    except Exception as err:  # dynamo / inductor raise many types
        raise RuntimeUnavailable(f"torch.compile failed: {first_line(err)}") from err
    return module, "\n".join(codes), _breaks(counters) - breaks


def _breaks(counters) -> int:
    """Graph breaks dynamo counted so far (an unsupported module, e.g. nn.GRU, counts as
    ``unimplemented``)."""
    return sum(counters["graph_break"].values()) + sum(counters["unimplemented"].values())
