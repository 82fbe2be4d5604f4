"""Compression methods. Importing this package registers every method."""

from src.methods import chain, distill, dynamic, half, prune, qat, static  # noqa: F401  (registration)
from src.methods.base import (
    BASELINE,
    BaselineConfig,
    MethodConfig,
    MethodContext,
    apply_method,
    list_methods,
    method_config,
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
    "rebuild",
]
