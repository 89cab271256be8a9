"""Read the pickled CIFAR-10 batches without running anything from the file.

A pickle can name any importable callable (``os.system``, ...) and have it called while loading.
The official CIFAR-10 python batches only hold dicts, lists, strings, bytes, ints and numpy arrays,
so :class:`RestrictedUnpickler` admits the few numpy callables that rebuild an array (with a plain,
non-object dtype) and refuses every other global: a hostile file fails with a DataError before any
of its code can run. (SVHN's ``.mat`` files are read by scipy's MATLAB reader, which never
unpickles.)
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from recurdepth.errors import DataError


class Refused(pickle.UnpicklingError):
    """The file asks for something other than plain data."""


def _dtype(spec: Any, *args: Any) -> np.dtype:
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise Refused("object arrays are not allowed")
    return dtype


def _latin1_encode(text: str, encoding: str = "utf-8", *args: Any) -> bytes:
    # Python 3 pickles of numpy arrays (protocol 2) store the raw buffer as latin-1 text.
    if encoding != "latin1":
        raise Refused(f"codec {encoding!r} is not allowed")
    return text.encode("latin1")


def _reconstruct(*args: Any) -> np.ndarray:
    from numpy._core.multiarray import _reconstruct as reconstruct

    return reconstruct(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain values and numpy arrays of plain dtypes."""

    def find_class(self, module: str, name: str) -> Any:
        """Return an admitted callable; anything else raises ``UnpicklingError``."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise Refused(f"refused to load {module}.{name}: the file may only "
                                         f"hold arrays, lists, dicts, strings and numbers") from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids are not part of the format."""
        raise Refused("persistent ids are not allowed")


def load_restricted(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` (latin-1 strings, like torchvision) admitting only plain data."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Refused as e:
        raise DataError(f"{path} was refused: {e}. Use the official CIFAR-10 python files "
                        f"(https://www.cs.toronto.edu/~kriz/cifar.html)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError, KeyError,
            MemoryError, OSError) as e:
        raise DataError(f"{path} could not be read as a CIFAR-10 batch ({type(e).__name__}: {e}); "
                        f"replace it with the official file") from None
    return obj


def read_cifar_batches(paths: list[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,3,32,32) uint8 and int64 labels of CIFAR-10 python batches, checked for form."""
    images, labels = [], []
    for path in paths:
        entry = load_restricted(path)
        if isinstance(entry, dict):
            # Python 2 wrote the official files' keys as str; a batch re-saved from what
            # pickle.load(f, encoding="bytes") shows has bytes keys (b"data"): the same batch.
            entry = {k.decode("latin1") if isinstance(k, bytes) else k: v
                     for k, v in entry.items()}
        if not isinstance(entry, dict) or "data" not in entry or not (
                "labels" in entry or "fine_labels" in entry):
            raise DataError(f"{path} is not a CIFAR-10 batch (expected a dict with 'data' and "
                            f"'labels'); replace it with the official file")
        data = entry["data"]
        target = entry["labels"] if "labels" in entry else entry["fine_labels"]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{path}: 'data' should be a uint8 array (N, 3072), got "
                            f"{getattr(data, 'dtype', type(data).__name__)} "
                            f"{getattr(data, 'shape', '')}")
        if not isinstance(target, (list, np.ndarray)) or len(target) != len(data) \
                or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool)
                           for t in target):
            raise DataError(f"{path}: 'labels' should be {len(data)} integers, one per image")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(target, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


__all__ = ["Refused", "RestrictedUnpickler", "load_restricted", "read_cifar_batches"]
