"""Model registry: ``create_model(name, **kw)`` like timm, DyAD and tiny test variants included.

``registry`` (variants and their defaults), ``dyad``, ``cnn``, ``gru`` (the decomposed GRU that
static int8 and pruning reach into); per family, what other packages ask without naming an
architecture: ``surgery/`` (structured pruning) and ``export`` (rewrites before a runtime exports
or compiles a model).
"""

from src.models import cnn as _cnn  # noqa: F401  (registers the CNN variants)
from src.models import dyad as _dyad  # noqa: F401  (registers the DyAD variants)
from src.models import gru as _gru  # noqa: F401  (registers the GRUs' export rewrites)
from src.models.registry import (
    create_model,
    list_models,
    model_defaults,
    model_family,
    register_model,
)
from src.models.surgery import cnn as _cnn_surgery  # noqa: F401  (registers the surgeries)
from src.models.surgery import dyad as _dyad_surgery  # noqa: F401

__all__ = ["create_model", "list_models", "model_defaults", "model_family", "register_model"]
