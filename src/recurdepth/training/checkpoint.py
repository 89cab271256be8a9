"""Checkpoints: written atomically, checked for corruption, loaded without running pickled code.

File layout: an 8-byte magic line, the SHA-256 of the payload, then the payload written by
``torch.save``. The digest catches truncated or bit-flipped files (torch's zip reader does not
notice a flipped byte inside a tensor), and the payload is read with ``weights_only=True``, so a
checkpoint from an untrusted source can hold tensors and plain values but never executable code.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
from pathlib import Path
from typing import Any

import torch

from recurdepth.errors import DataError
from recurdepth.io import atomic_write

MAGIC = b"RDCKPT1\n"
_DIGEST_BYTES = 32


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).digest()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(digest)
            f.write(payload)

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; DataError if corrupt or unsafe."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    head = len(MAGIC) + _DIGEST_BYTES
    if len(data) < head or not data.startswith(MAGIC):
        raise DataError(f"{path} is not a recurdepth checkpoint (no {MAGIC[:-1].decode()} header); "
                        f"it was not written by recurdepth or is damaged")
    digest, payload = data[len(MAGIC):head], data[head:]
    if hashlib.sha256(payload).digest() != digest:
        raise DataError(f"checkpoint {path} is corrupt (checksum mismatch: truncated or damaged); "
                        f"delete it to restart the run from scratch")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise DataError(f"checkpoint {path} was refused: it holds objects other than tensors and "
                        f"plain values (loading it could run code). Details: "
                        f"{str(e).splitlines()[0]}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise DataError(f"checkpoint {path} cannot be read: {str(e).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise DataError(f"checkpoint {path} does not hold a state dict")
    return state


def rng_state() -> dict[str, Any]:
    """The torch, CUDA, Python and NumPy RNG states of this process (checkpoint-safe values)."""
    import numpy as np

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state`."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))


__all__ = ["MAGIC", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]
