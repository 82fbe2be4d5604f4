"""Export rewrites, kept beside the models: module classes a deployment runtime cannot take as
they are, and what it should do instead.

A model family registers an :class:`ExportRewrite` for its module class
(:func:`register_export_rewrite`), as it registers a pruning surgery (``src.models.surgery``);
the runtimes (``src.runtimes``) ask :func:`rewrite_for_export` and :func:`int8_compile_problem`
and never name an architecture. ``src.models.gru`` registers the decomposed GRU: exported, it goes
back to one ``nn.GRU`` (a single ``GRU`` node the ONNX runtime unrolls itself), and an int8
variant holding it, or an int8 ``nn.GRU``, is not compiled.

Example:
    >>> register_export_rewrite(DecomposedGRU, to_gru, int8_compile="PT2E has no int8 GRU")
    >>> model, names = rewrite_for_export(model)  # every DecomposedGRU now an nn.GRU
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ExportRewrite:
    """How deployment runtimes take one module class.

    Attributes:
        exportable: The module as an exporter should read it: the same function, built from
            plain torch modules (None: it exports as it is).
        int8_compile: Why ``torch.compile`` should not take an int8 variant that holds such a
            module, in one line (None: nothing against it).
        int8_only: ``int8_compile`` holds only where the module itself was int8, not wherever
            it is.
    """

    exportable: Callable[[nn.Module], nn.Module] | None = None
    int8_compile: str | None = None
    int8_only: bool = False


_REWRITES: dict[type[nn.Module], ExportRewrite] = {}


def register_export_rewrite(
    module_class: type[nn.Module],
    exportable: Callable[[nn.Module], nn.Module] | None = None,
    *,
    int8_compile: str | None = None,
    int8_only: bool = False,
) -> None:
    """Register how runtimes take ``module_class`` and its subclasses (:class:`ExportRewrite`)."""
    _REWRITES[module_class] = ExportRewrite(exportable, int8_compile, int8_only)


def rewrite_of(module: nn.Module) -> ExportRewrite | None:
    """The rewrite registered for ``module``'s class (or a base class), None if there is none."""
    return next((_REWRITES[c] for c in type(module).__mro__ if c in _REWRITES), None)


def rewrite_for_export(
    model: nn.Module, prepare: Callable[[nn.Module], object] | None = None
) -> tuple[nn.Module, list[str]]:
    """``model`` with every module that has an exportable form replaced by it, in place (a
    ``model`` that has one itself comes back replaced, named ``""``), and the replaced names.

    Args:
        prepare: Called on each such module first: the runtime's own clean-up (its twinned
            layers back to plain ones, say) before the family's rewrite reads it.

    Raises:
        TypeError: A module the family's rewrite cannot read (its message says which part).
    """

    def rewritten(module: nn.Module) -> nn.Module | None:
        rule = rewrite_of(module)
        if rule is None or rule.exportable is None:
            return None
        if prepare is not None:
            prepare(module)
        return rule.exportable(module)

    root = rewritten(model)
    if root is not None:
        return root, [""]
    names: list[str] = []
    pending = [("", model)]
    while pending:  # a replaced module's own children are its rewrite's business
        prefix, parent = pending.pop()
        for name, child in list(parent.named_children()):
            full = f"{prefix}{name}"
            replaced = rewritten(child)
            if replaced is None:
                pending.append((f"{full}.", child))
            else:
                setattr(parent, name, replaced)
                names.append(full)
    return model, sorted(names)


def int8_compile_problem(model: nn.Module, int8_modules: Collection[str]) -> str | None:
    """Why ``torch.compile`` should not take ``model``, an int8 variant whose int8 modules are
    ``int8_modules`` (names in ``model``): the first registered reason, None when there is none."""
    int8 = set(int8_modules)
    for name, module in model.named_modules():
        rule = rewrite_of(module)
        if rule is not None and rule.int8_compile and (not rule.int8_only or name in int8):
            return rule.int8_compile
    return None
