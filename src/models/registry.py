"""Model registry, timm style: a builder per name, with its config class and default values.

The registry is the one place that knows a variant's defaults (as timm's ``default_cfgs``): the
Hydra model configs carry only the name and deliberate overrides, and read the rest from
:func:`model_defaults`.

Example:
    >>> from src.models import create_model
    >>> model = create_model("dyad_tiny", hidden_size=16)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from src.core.errors import ConfigError
from src.core.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """A registered variant: ``build(config_class(**{**defaults, **overrides}))``."""

    build: Callable[[Any], nn.Module]
    config_class: type
    defaults: dict = field(default_factory=dict)

    def config(self, **overrides) -> Any:
        known = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"model has no key(s) {unknown}; the keys of {self.config_class.__name__} are "
                f"{sorted(known)}"
            )
        return self.config_class(**{**self.defaults, **overrides})


MODELS: Registry[ModelEntry] = Registry("model", hint="model=NAME")


def register_model(config_class: type, **defaults) -> Callable:
    """Register a builder ``fn(config) -> nn.Module`` under its function name, with the config
    dataclass it takes and the variant's defaults (fields not given keep the dataclass's)."""

    def wrap(fn: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        MODELS.add(fn.__name__, ModelEntry(fn, config_class, dict(defaults)))
        return fn

    return wrap


def list_models(prefix: str = "") -> list[str]:
    """Sorted registered names starting with ``prefix``."""
    return MODELS.names(prefix)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; keyword arguments override the variant's defaults.

    Arguments that are ``None`` are dropped so that the variant's own defaults apply.

    Raises:
        ConfigError: ``name`` is not registered (the message lists what is), or a keyword is not
            a field of the variant's config.
    """
    entry = MODELS.get(name)
    return entry.build(entry.config(**{k: v for k, v in kwargs.items() if v is not None}))


def model_family(name: str) -> str:
    """The family of variant ``name`` (its config class's ``FAMILY``, else its own name)."""
    return getattr(MODELS.get(name).config_class, "FAMILY", name)


def model_defaults(name: str) -> dict:
    """Every config field of variant ``name`` with its default value (plain Python types)."""
    return dataclasses.asdict(MODELS.get(name).config())
