"""Method registry, torchao style: a config dataclass validated on construction, a registered
handler, one verb.

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

from src.core.errors import ConfigError

BASELINE = "baseline"
CHAIN = "chain"  # the handler of every config whose ``steps`` is a list of methods


@dataclass
class MethodConfig:
    """Keys every method shares.

    Attributes:
        name: The method (the name users type after ``+method=``).
        baseline_run_id: Use this MLflow run's model as the fp32 baseline instead of finding one
            by config (or training it).
    """

    name: str = BASELINE
    baseline_run_id: str | None = None
    handler: ClassVar[str | None] = None  # registered handler, when not looked up by ``name``

    def __post_init__(self) -> None:
        """Subclasses check their own fields here and raise ConfigError naming the fix."""


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
    """

    data: Any = None
    fine_tune: Callable[..., None] | None = None
    task: Any = None
    report_step: Callable[[str, nn.Module], None] | None = None


class Method:
    """A handler: ``apply`` compresses with data; ``rebuild`` recreates the compressed structure
    without data, so a saved state_dict can be loaded into it."""

    config_class: ClassVar[type[MethodConfig]] = MethodConfig

    def apply(self, model: nn.Module, config: MethodConfig, context: MethodContext) -> nn.Module:
        return self.rebuild(model, config)

    def rebuild(self, model: nn.Module, config: MethodConfig) -> nn.Module:
        raise NotImplementedError


_METHODS: dict[str, Method] = {}


def register_method(*names: str) -> Callable[[type[Method]], type[Method]]:
    """Register a handler class under one or more method names."""

    def wrap(cls: type[Method]) -> type[Method]:
        for name in names:
            _METHODS[name] = cls()
        return cls

    return wrap


def list_methods() -> list[str]:
    return sorted(_METHODS)


def method_config(values: dict | None) -> MethodConfig:
    """Validated config for ``values`` (``None``: the fp32 baseline).

    Raises:
        ConfigError: Unknown method, unknown key, or a value out of range.
    """
    if not values or values.get("name", BASELINE) == BASELINE:
        return MethodConfig(
            **{k: v for k, v in (values or {}).items() if k in ("name", "baseline_run_id")}
        )
    name = values["name"]
    key = CHAIN if isinstance(values.get("steps"), list | tuple) else name
    if key not in _METHODS:
        raise ConfigError(f"Unknown method {name!r}; choose from {list_methods()} (+method=NAME)")
    cls = _METHODS[key].config_class
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"method {name!r} has no key(s) {unknown}; its keys are {sorted(known)}")
    return cls(**values)


def handler(config: MethodConfig) -> Method:
    return _METHODS[config.handler or config.name]


def apply_method(model: nn.Module, config: MethodConfig, context: MethodContext) -> nn.Module:
    """Compress a copy of ``model`` (the baseline stays intact for side-by-side comparison)."""
    return handler(config).apply(copy.deepcopy(model), config, context)


def rebuild(model: nn.Module, config: MethodConfig) -> nn.Module:
    """The compressed structure of ``config`` around a fresh ``model``, ready for its weights."""
    if config.name == BASELINE:
        return model
    return handler(config).rebuild(model, config)
