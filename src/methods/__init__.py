"""Compression methods, torchao style: a config dataclass per method, a handler keyed by its type,
one verb (``apply_method``). Importing this package registers every method.

``base`` (the registry, ``method_config``, ``method_defaults``, the static int8 defaults);
``dynamic``, ``static``, ``qat``, ``half``, ``prune`` (magnitude, unstructured or structured
through the models' surgery), ``distill``, ``mixed`` (per-layer precision from sensitivity) and
``chain`` (steps in order); ``layers`` and ``allocation``: the per-layer scan machinery that
``mixed``, sensitivity-allocated pruning and ``python -m src.sensitivity`` share.
"""

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
