"""Compression methods. Importing this package registers every method."""

from src.methods import (  # noqa: F401  (registration)
    chain,
    distill,
    dynamic,
    half,
    mixed,
    prune,
    qat,
    static,
)
from src.methods.base import (
    BASELINE,
    BaselineConfig,
    MethodConfig,
    MethodContext,
    apply_method,
    list_methods,
    method_config,
    method_defaults,
    rebuild,
)

__all__ = [
    "BASELINE",
    "BaselineConfig",
    "MethodConfig",
    "MethodContext",
    "apply_method",
    "list_methods",
    "method_config",
    "method_defaults",
    "rebuild",
]
