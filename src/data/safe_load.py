"""Load the released DyAD pickles without ever running pickled code.

The released snippets are ``torch.save`` zip files holding ``(ndarray, dict)``; torch >= 2.6
refuses them under its ``weights_only=True`` default because they contain numpy objects. Rather
than ``weights_only=False`` (which executes whatever the pickle asks for), we keep
``weights_only=True`` and allow exactly the numpy globals such a file needs. Anything else a file
reaches for is refused with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import pickle
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from numpy._core import multiarray as _multiarray

from src.core.errors import UserError, first_line


class UnsafePickleError(UserError):
    """A pickle asked for a global that is not on the allowlist."""


class CorruptFileError(UserError):
    """A file could not be read as a pickle at all (truncated, empty, not a pickle)."""


# numpy 1.x wrote ``numpy.core.multiarray``; numpy 2 writes ``numpy._core.multiarray``. The real
# files predate numpy 2, so both spellings must map to the same (harmless) functions.
NUMPY_SAFE_GLOBALS = [
    np.ndarray,
    np.dtype,
    _multiarray._reconstruct,
    _multiarray.scalar,
    (_multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    (_multiarray.scalar, "numpy.core.multiarray.scalar"),
    *[type(np.dtype(c)) for c in "bhilqBHILQefdg?"],
]

_PLAIN_PICKLE_SAFE = {
    ("builtins", name): getattr(builtins, name)
    for name in ("list", "dict", "tuple", "set", "str", "int", "float", "bool", "complex")
}
_PLAIN_PICKLE_SAFE.update(
    {
        ("collections", "OrderedDict"): collections.OrderedDict,
        # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): codecs.encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        **{
            (mod, name): getattr(_multiarray, name)
            for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")
        },
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Plain-pickle reader with the same allowlist: builtins and the numpy array machinery."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PLAIN_PICKLE_SAFE:
            return _PLAIN_PICKLE_SAFE[(module, name)]
        raise UnsafePickleError(f"Unsupported global: {module}.{name}")


def safe_load(path: str | Path) -> object:
    """Load a torch-saved or plain pickle with an allowlist, never executing pickled code.

    Args:
        path: File written by ``torch.save`` (zip or legacy format) or by ``pickle.dump``.

    Returns:
        The unpickled object (numpy arrays, builtins, tensors only).

    Raises:
        UnsafePickleError: The file reaches for a global outside the allowlist.
        CorruptFileError: The file is empty, truncated or not a pickle.
    """
    path = Path(path)
    with _translated_errors(path):
        if zipfile.is_zipfile(path):
            with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
                return torch.load(path, weights_only=True, map_location="cpu")
        return _load_non_zip(path)


def restricted_pickle_load(path: str | Path, encoding: str = "ASCII") -> object:
    """A plain pickle under the same allowlist (e.g. CIFAR-10 batches: ``encoding="bytes"``).

    Raises:
        UnsafePickleError: The file reaches for a global outside the allowlist.
        CorruptFileError: The file is empty, truncated or not a pickle.
    """
    path = Path(path)
    with _translated_errors(path), path.open("rb") as fh:
        return _RestrictedUnpickler(fh, encoding=encoding).load()


@contextmanager
def _translated_errors(path: Path) -> Iterator[None]:
    """Whatever the unpickler raised becomes one line naming the file and the fix."""
    try:
        yield
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():
            raise UnsafePickleError(_unsafe_message(path, err)) from None
        raise CorruptFileError(_corrupt_message(path, err)) from None
    except UnsafePickleError as err:
        raise UnsafePickleError(_unsafe_message(path, err)) from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CorruptFileError(_corrupt_message(path, err)) from None


_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_non_zip(path: Path) -> object:
    """Legacy ``torch.save`` files start with a pickled magic number; others are plain pickles."""
    with path.open("rb") as fh:
        first = _RestrictedUnpickler(fh).load()
        if first != _TORCH_LEGACY_MAGIC:
            return first
    with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
        return torch.load(path, weights_only=True, map_location="cpu")


def _unsafe_message(path: Path, err: Exception) -> str:
    found = re.search(r"nsupported (?:global:? )?(?:GLOBAL )?([\w.]+)", str(err))
    first = found.group(1) if found else first_line(err, None)
    return (
        f"{path}: refused to load, the pickle asks for code outside the numpy allowlist "
        f"({first[:160]}); only use files from the original release or our generator"
    )


def _corrupt_message(path: Path, err: Exception) -> str:
    first = first_line(err, None)
    return (
        f"{path}: corrupt or truncated pickle ({first[:160]}); re-extract it from the "
        f"release archive or delete it"
    )


def load_snippet(path: str | Path) -> tuple[np.ndarray, dict]:
    """Load one released snippet file as ``(float array (128, n_channels), metadata dict)``.

    Raises:
        ValueError: The file is unsafe, corrupt, or does not hold an ``(array, dict)`` pair.
    """
    obj = safe_load(path)
    if not (isinstance(obj, tuple | list) and len(obj) == 2 and isinstance(obj[1], dict)):
        raise CorruptFileError(
            f"{path}: expected a (array, metadata dict) pair as in the DyAD release, "
            f"got {type(obj).__name__}; check that this folder holds DyAD snippets"
        )
    array, meta = obj
    return np.asarray(array), meta
