"""One registry helper for every named family (models, methods, tasks, data), timm style.

Example:
    >>> MODELS = Registry("model", hint="model=NAME")
    >>> @MODELS.register("tiny")
    ... def tiny(): ...
    >>> MODELS.get("tiny")
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from src.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries, with an error that lists the choices when a name is unknown.

    Args:
        kind: What is registered (``model``, ``method``, ...), for messages.
        hint: How a user picks one (``+method=NAME``), appended to the unknown-name error.
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind, self.hint = kind, hint
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` (a second registration wins, with a warning)."""
        if name in self._entries:
            warnings.warn(
                f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3
            )
        self._entries[name] = entry
        return entry

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``names`` (default: its ``__name__``)."""

        def wrap(entry: T) -> T:
            for name in names or (entry.__name__,):
                self.add(name, entry)
            return entry

        return wrap

    def get(self, name: str) -> T:
        """The entry named ``name``.

        Raises:
            ConfigError: Unknown name; the message lists the registered ones.
        """
        if name not in self._entries:
            how = f" ({self.hint})" if self.hint else ""
            raise ConfigError(f"Unknown {self.kind} {name!r}; choose from {self.names()}{how}")
        return self._entries[name]

    def names(self, prefix: str = "") -> list[str]:
        """Sorted registered names starting with ``prefix``."""
        return sorted(name for name in self._entries if name.startswith(prefix))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
