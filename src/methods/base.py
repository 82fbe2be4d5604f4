"""Method registry, torchao style: a config dataclass validated on construction, a handler
registered for that config type, one verb.

A method config's ``kind`` (the registered type; defaults to its ``name``) picks its class; the
class picks its handler. ``name`` is only the label a run is tagged with (``fp16`` is a ``half``
config with ``dtype: fp16``; ``prune_dynamic`` a ``chain``), so dispatch never looks at a value's
type or at a label.

Example:
    >>> cfg = method_config({"name": "dynamic", "dtype": "int8"})
    >>> small = apply_method(model, cfg, context)          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from src.core import schema
from src.core.errors import ConfigError
from src.core.registry import Registry

BASELINE = schema.BASELINE
CALIBRATION_BATCHES = 16  # batches that set static int8 ranges, unless a method sets its own
OBSERVER = "histogram"  # static int8's activation observer, unless a method sets its own


@dataclass
class MethodConfig:
    """Keys every method shares.

    Attributes:
        name: The label runs are tagged with (the name users type after ``+method=``).
        baseline_run_id: Use this MLflow run's model as the fp32 baseline instead of finding one
            by config (or training it).

    Class attributes:
        KIND: The registered method type (``kind`` in a config).
        VERSION: Bumped when the meaning of a field changes; stored in the model artifact, so
            an artifact is never rebuilt under a config it was not made with.
    """

    name: str = BASELINE
    baseline_run_id: str | None = None
    KIND: ClassVar[str] = BASELINE
    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        """Subclasses check their own fields here and raise ConfigError naming the fix."""

    @property
    def calibration_count(self) -> int:
        """Calibration batches that set static int8 ranges for this method's variant; a
        deployment runtime's own static int8 form of it calibrates on as many. Methods with a
        ``calibration_batches`` field answer with it."""
        return CALIBRATION_BATCHES

    def to_dict(self) -> dict:
        """Plain values that :func:`method_config` turns back into this config."""
        return {"kind": self.KIND, "version": self.VERSION, **dataclasses.asdict(self)}


@dataclass
class BaselineConfig(MethodConfig):
    """The fp32 model itself (no ``+method``, or ``+method=baseline``)."""


@dataclass
class MethodContext:
    """What a handler may use besides the model.

    Attributes:
        data: The datamodule (calibration batches, example inputs).
        fine_tune: ``fine_tune(model, epochs, lr, extra_loss=None)`` trains in place with the
            task's own loss plus ``extra_loss`` (a module called as ``extra_loss(x, output)``
            that returns named loss tensors, ``total`` among them). ``None`` epochs/lr: the
            training config's.
        task: The task (a :class:`src.tasks.Task`): its distillation loss.
        report_step: ``report_step(label, model)`` records an intermediate model of a chain.
        log_table: ``log_table(name, frame)`` records how a method decided (``tables/<name>``).
        seed: The run's seed.
        reuse: ``reuse(label, step)``: a chain's first step as a finished run already computed
            it, or None (compute it).
        reseed: Puts every random generator back to the run's seed: a chain calls it before
            each later step, so no step's result depends on whether the one before it was
            computed here or reused.
    """

    data: Any = None
    fine_tune: Callable[..., None] | None = None
    task: Any = None
    report_step: Callable[[str, nn.Module], None] | None = None
    log_table: Callable[[str, Any], None] | None = None
    seed: int = 0
    reuse: Callable[[str, Any], nn.Module | None] | None = None
    reseed: Callable[[], None] | None = None

    def record(self, name: str, frame) -> None:
        if self.log_table is not None:
            self.log_table(name, frame)


class Method:
    """A handler: ``apply`` compresses with data; ``rebuild`` recreates the compressed structure
    without data, so a saved state_dict can be loaded into it."""

    def apply(self, model: nn.Module, config: MethodConfig, context: MethodContext) -> nn.Module:
        return self.rebuild(model, config)

    def rebuild(self, model: nn.Module, config: MethodConfig) -> nn.Module:
        raise NotImplementedError


KINDS: Registry[type[MethodConfig]] = Registry("method", hint="+method=NAME")
_HANDLERS: dict[type[MethodConfig], Method] = {}


def register_method(config_class: type[MethodConfig]) -> Callable[[type[Method]], type[Method]]:
    """Register a handler class for ``config_class`` (and the class under its ``KIND``)."""

    def wrap(cls: type[Method]) -> type[Method]:
        KINDS.add(config_class.KIND, config_class)
        _HANDLERS[config_class] = cls()
        return cls

    return wrap


def list_methods() -> list[str]:
    """The registered method kinds."""
    return KINDS.names()


def method_config(values: dict | None) -> MethodConfig:
    """Validated config for ``values`` (``None``: the fp32 baseline).

    ``values["kind"]`` (default: its ``name``) picks the config class. A ``version`` (from an
    artifact) must be the class's :attr:`MethodConfig.VERSION`.

    Raises:
        ConfigError: Unknown method, unknown key, other version, or a value out of range.
    """
    values = dict(values or {})
    kind = values.pop("kind", None) or values.get("name") or BASELINE
    cls = KINDS.get(kind)
    version = values.pop("version", cls.VERSION)
    if version != cls.VERSION:
        raise ConfigError(
            f"method {kind!r} config version {version} is not this code's {cls.VERSION}; "
            "re-run the method with this version"
        )
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        name = values.get("name", kind)
        raise ConfigError(f"method {name!r} has no key(s) {unknown}; its keys are {sorted(known)}")
    return cls(**values)


def method_defaults(kind: str) -> dict:
    """Every field of method ``kind`` that has a default, with it (``name`` aside): the node
    ``registry/method/<kind>`` that ``conf/method/*.yaml`` extends, so a method's YAML lists
    only what differs from its dataclass. Fields without a default (a chain's ``steps``) are
    left for the YAML to give."""
    defaults = {}
    for field in dataclasses.fields(KINDS.get(kind)):
        if field.name == "name":
            continue
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


def handler(config: MethodConfig) -> Method:
    return _HANDLERS[type(config)]


def apply_method(model: nn.Module, config: MethodConfig, context: MethodContext) -> nn.Module:
    """Compress a copy of ``model`` (the baseline stays intact for side-by-side comparison)."""
    return handler(config).apply(copy.deepcopy(model), config, context)


def rebuild(model: nn.Module, config: MethodConfig) -> nn.Module:
    """The compressed structure of ``config`` around a fresh ``model``, ready for its weights."""
    return handler(config).rebuild(model, config)


@register_method(BaselineConfig)
class Identity(Method):
    """The baseline: the model as it is."""

    def apply(self, model: nn.Module, config: MethodConfig, context: MethodContext) -> nn.Module:
        return model

    def rebuild(self, model: nn.Module, config: MethodConfig) -> nn.Module:
        return model
