"""Name-keyed model registry.

Example:
    >>> from src.models import create_model
    >>> model = create_model("dyad_tiny")
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import nn

from src.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (the name users type)."""
    if fn.__name__ in _MODELS:
        warnings.warn(f"model {fn.__name__!r} registered twice; the later one wins", stacklevel=2)
    _MODELS[fn.__name__] = fn
    return fn


def list_models(prefix: str = "") -> list[str]:
    """Sorted registered names starting with ``prefix``."""
    return sorted(name for name in _MODELS if name.startswith(prefix))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; keyword arguments override the variant's defaults.

    Arguments that are ``None`` are dropped so that the variant's own defaults apply.

    Raises:
        ValueError: ``name`` is not registered (the message lists what is).
    """
    if name not in _MODELS:
        raise ConfigError(f"Unknown model {name!r}; choose from {list_models()}")
    return _MODELS[name](**{k: v for k, v in kwargs.items() if v is not None})
