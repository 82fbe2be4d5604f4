"""What every deployment runtime shares, and the registry that names them without importing them.

A runtime is a function ``deploy(model, context) -> Deployed`` registered with
:func:`register_runtime`, which also declares what the pipeline does with it: the file it ships
under the run (``artifact``), the metric of that file's size (``size_metric``) and how a
baseline's logged file is opened again instead of deploying the baseline anew (``reopen``). The
registry holds the built-in runtimes as ``"module:function"`` strings (:data:`BUILT_IN`): their
names validate a config, and a runtime's module (with onnxruntime, onnx or inductor behind it) is
imported the first time that runtime deploys. A runtime that cannot take a variant raises
:class:`RuntimeUnavailable` with a one-line reason; the caller logs it and goes on.

This module imports torch only.

Example:
    >>> spec = RuntimeSpec(("eager", "onnxruntime"))
    >>> deployed = deploy("onnxruntime", model, DeployContext(example, calib, workdir, 2))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from src.core import schema
from src.core.errors import ConfigError, UserError
from src.core.metrics import MetricSpec
from src.core.registry import Registry
from src.models.util import input_dtype

EAGER = schema.EAGER
# The built-in runtimes, imported on first use (each module registers its deploy function).
BUILT_IN = {
    EAGER: "src.runtimes.eager:deploy",
    "onnxruntime": "src.runtimes.onnxruntime.session:deploy",
    "compile": "src.runtimes.compile:deploy",
    "cuda": "src.runtimes.cuda:deploy",
}


class RuntimeUnavailable(UserError):
    """A model cannot be exported or run in a runtime; the message is the one-line reason."""


@dataclass(frozen=True)
class DeployContext:
    """What deploying needs besides the model.

    Attributes:
        example: One input batch (its shape fixes every dimension but the batch).
        calibration: Batches that calibrate a static int8 runtime form.
        workdir: Where the runtime's files go.
        threads: Intra-op threads of the runtime (the latency spec's).
    """

    example: torch.Tensor
    calibration: Sequence[torch.Tensor]
    workdir: Path
    threads: int | None = None


@dataclass
class Deployed:
    """A variant in a runtime.

    Attributes:
        module: Called like the eager model, returns the same output structure.
        artifact: The file a deployment would ship (None: none).
        int8_ops: Int8 compute kernels in what the runtime runs (None where not counted).
        float_ops: Float compute kernels (MatMul/Gemm/Conv/GRU) in it.
        form: How the variant runs there, in words (``ORT dynamic int8, 2 GRU(s) unrolled``).
    """

    module: nn.Module
    artifact: Path | None = None
    int8_ops: int | None = None
    float_ops: int | None = None
    form: str = ""

    @property
    def size_mb(self) -> float | None:
        return None if self.artifact is None else self.artifact.stat().st_size / 1e6


DeployFn = Callable[[nn.Module, DeployContext], Deployed]
ReopenFn = Callable[[Path, nn.Module, DeployContext], Deployed]


@dataclass(frozen=True)
class Runtime:
    """A registered runtime and what the pipeline does with what it deploys.

    Attributes:
        name: The name in ``benchmark.runtimes``.
        deploy: ``deploy(model, context)``; raises :class:`RuntimeUnavailable` when it cannot.
        artifact: Where the file it ships (``Deployed.artifact``) is logged in the run,
            ``folder/file`` (``model/model.onnx``); None: nothing is logged.
        size_metric: The metric that file's size is logged as, in MB (``size/onnx_mb``).
        reopen: ``reopen(path, eager_model, context)``: the fp32 baseline's logged artifact,
            downloaded to ``path``, as a :class:`Deployed` (None: the baseline is deployed again).
    """

    name: str
    deploy: DeployFn
    artifact: str | None = None
    size_metric: str | None = None
    reopen: ReopenFn | None = None

    @property
    def reuses_baseline_artifact(self) -> bool:
        """Whether a baseline run's logged file stands in for deploying the baseline again."""
        return self.artifact is not None and self.reopen is not None


class RuntimeRegistry(Registry["Runtime | str"]):
    """Runtimes by name; an entry may be a ``"module:function"`` string until first used."""

    def add(self, name: str, entry: Runtime | str) -> Runtime | str:
        if isinstance(self._entries.get(name), str) and isinstance(entry, Runtime):
            self._entries[name] = entry  # a lazy entry's module registering itself on import
            return entry
        return super().add(name, entry)

    def get(self, name: str) -> Runtime:
        """The runtime ``name``, its module imported now if it was a string.

        Raises:
            ConfigError: Unknown name; the message lists the registered ones.
        """
        entry = super().get(name)
        if isinstance(entry, str):
            module, _, function = entry.partition(":")
            deploy_fn = getattr(importlib.import_module(module), function)
            entry = self._entries[name]
            if isinstance(entry, str):  # the module defined the function without registering
                entry = self._entries[name] = Runtime(name, deploy_fn)
        return entry

    def remove(self, name: str) -> None:
        """Forget runtime ``name`` (a plugin unloaded, a test's own runtime)."""
        self._entries.pop(name, None)


RUNTIMES = RuntimeRegistry("runtime", hint="benchmark.runtimes=[eager,onnxruntime]")
for _name, _target in BUILT_IN.items():
    RUNTIMES.add(_name, _target)


def register_runtime(
    name: str,
    *,
    artifact: str | None = None,
    size_metric: str | None = None,
    reopen: ReopenFn | None = None,
) -> Callable[[DeployFn], DeployFn]:
    """Decorator: register the decorated ``deploy(model, context)`` as runtime ``name`` (the
    other arguments: see :class:`Runtime`)."""

    def wrap(deploy_fn: DeployFn) -> DeployFn:
        RUNTIMES.add(name, Runtime(name, deploy_fn, artifact, size_metric, reopen))
        return deploy_fn

    return wrap


def deploy(name: str, model: nn.Module, context: DeployContext) -> Deployed:
    """``model`` in runtime ``name``.

    Raises:
        RuntimeUnavailable: The runtime cannot take this model (one-line reason).
    """
    return RUNTIMES.get(name).deploy(model, context)


@dataclass(frozen=True)
class RuntimeSpec:
    """Which runtimes measure every variant, and how close a runtime's answer must stay.

    Attributes:
        names: Runtimes besides ``eager`` (always measured: the reference) to deploy to. The
            config's default: ONNX Runtime beside eager (``compile`` compiles every model at
            every batch size, so it is asked for: ``benchmark.runtimes=[eager,compile]``).
        parity_tolerance: Largest change of the task's primary metric, recomputed from the
            runtime's own outputs on the test set, that still counts as the same model; beyond
            it the runtime's row is failed parity and takes no part in verdicts. None: the
            metric's own (:attr:`MetricSpec.parity_margin`).
    """

    names: tuple[str, ...] = (EAGER, "onnxruntime")
    parity_tolerance: float | None = None

    def __post_init__(self) -> None:
        names = (self.names,) if isinstance(self.names, str) else tuple(self.names or ())
        unknown = [n for n in names if n not in RUNTIMES]
        if unknown:
            raise ConfigError(
                f"benchmark.runtimes has unknown {unknown}; choose from {RUNTIMES.names()}"
            )
        object.__setattr__(self, "names", tuple(dict.fromkeys((EAGER, *names))))
        if self.parity_tolerance is not None and not float(self.parity_tolerance) >= 0:
            raise ConfigError(
                f"benchmark.parity_tolerance={self.parity_tolerance} must be >= 0, or null for "
                "the metric's non-inferiority margin"
            )

    def tolerance(self, metric: MetricSpec) -> float:
        """The parity tolerance for ``metric``: the one set here, else the metric's own."""
        if self.parity_tolerance is not None:
            return float(self.parity_tolerance)
        return metric.parity_margin

    @property
    def deployed(self) -> tuple[str, ...]:
        """The runtimes other than eager."""
        return tuple(n for n in self.names if n != EAGER)


def check_float_weights(model: nn.Module, runtime: str) -> None:
    """Half-precision models stay in eager: exporting or compiling them is not built yet.

    Raises:
        RuntimeUnavailable: ``model`` has fp16 or bf16 weights (``runtime`` says where to).
    """
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes & {torch.float16, torch.bfloat16}:
        names = sorted(str(d).removeprefix("torch.") for d in dtypes)
        raise RuntimeUnavailable(
            f"half-precision weights ({', '.join(names)}): deploying them to {runtime} is not "
            "built yet; they are measured in eager"
        )


class BehindEager(nn.Module):
    """A runtime's callable behind the eager model's interface: attributes it does not have
    (DyAD's ``split_target``, for the task's evaluation) come from the eager model, which is
    held, not registered as a submodule (never traced, moved or counted)."""

    def __init__(self, eager: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_eager", eager)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_eager"), name)


@torch.inference_mode()
def max_abs_diff(model: nn.Module, runtime, inputs: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between the eager model's outputs and the runtime's over
    ``inputs`` (every output leaf, e.g. DyAD's prediction and latent statistics)."""
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        dtype = input_dtype(model)  # a half-precision model is fed as it computes
        for x in inputs:
            expected, _ = tree_flatten(model(x.to(dtype) if x.is_floating_point() else x))
            got, _ = tree_flatten(runtime(x))
            if len(got) != len(expected):
                raise RuntimeUnavailable(
                    f"the runtime returned {len(got)} outputs, the eager model {len(expected)}"
                )
            for e, g in zip(expected, got, strict=True):
                worst = max(worst, float((e.float() - g.float()).abs().max()))
    finally:
        model.train(was_training)
    return worst
