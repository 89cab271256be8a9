"""Bit strings for deep thinking (Bansal et al. 2022): prefix sums and parity, made from a seed.

A *prefix-sum* example is a string of random bits ``x_1..x_L`` labelled at every position with
``y_i = (x_1 + ... + x_i) mod 2``; a *parity* example carries one label, the parity of the whole
string (the last prefix sum). Strings are generated in memory: the same (seed, length, split, count)
always gives byte-identical arrays, so there are no files to download or prepare, and the data
fingerprint of a run is the checksum of the generated arrays (a changed generator is noticed).

Inputs are stored like images, ``uint8 (N, 1, 1, L)`` (one channel, height 1, width L), so that the
project's tensor pipeline (batching, normalisation, evaluation) carries them unchanged; the 1-D
family flattens the height away. Both data sets are registered here: ``prefix_sums`` with the
per-position task (every position counts, a string is right only when all its positions are),
``parity`` with the per-string task (one label, chance 50%).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from recurdepth.data.options import sized_options
from recurdepth.data.registry import DatasetSpec, register_dataset
from recurdepth.data.tasks.per_position import PerPosition  # the task of prefix_sums
from recurdepth.data.tasks.per_string import PerString  # the task of parity
from recurdepth.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

MAX_LENGTH = 8192  # longest string generated (Bansal et al. test up to 512 bits)
# Strings per split: the authors' data files hold 10,000 strings per length.
N_TRAIN = 10_000
N_TEST = 10_000
DATA_SEED = 0  # fixed, like the mazes' prepare seed: every run sees the same strings
_SPLITS = {"train": 0, "test": 1}
KINDS = ("prefix_sums", "parity")


def check_length(length: int, key: str = "length") -> int:
    """``length`` as an int in 1..MAX_LENGTH, or a one-line ConfigError naming ``key``."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
        raise ConfigError(f"{key} must be a whole number of bits in 1..{MAX_LENGTH}, got {length!r}")
    if not 1 <= int(length) <= MAX_LENGTH:
        raise ConfigError(f"{key} must be in 1..{MAX_LENGTH} bits, got {length}")
    return int(length)


def random_bits(n: int, length: int, seed: int) -> np.ndarray:
    """``n`` random strings of ``length`` bits (uint8 0/1, shape (n, length)) drawn from ``seed``."""
    length = check_length(length)
    if n < 0:
        raise ConfigError(f"the number of strings must be >= 0, got {n}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), length])))
    return rng.integers(0, 2, size=(int(n), length), dtype=np.uint8)


def prefix_sums(bits: np.ndarray) -> np.ndarray:
    """Per-position labels ``y_i = (x_1 + ... + x_i) mod 2`` of strings (n, L) (int64)."""
    return np.bitwise_xor.accumulate(np.asarray(bits, dtype=np.int64), axis=-1)


def parity(bits: np.ndarray) -> np.ndarray:
    """One label per string: the parity of its bits (int64, shape (n,))."""
    return np.bitwise_xor.reduce(np.asarray(bits, dtype=np.int64), axis=-1)


def generate(kind: str, n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` strings of ``length`` bits and their labels (``kind``: prefix_sums or parity)."""
    labels = {"prefix_sums": prefix_sums, "parity": parity}
    if kind not in labels:
        raise ConfigError(f"unknown string task {kind!r}; valid choices: {', '.join(KINDS)}")
    bits = random_bits(n, length, seed)
    return bits, labels[kind](bits)


def split_seed(split: str, seed: int = DATA_SEED) -> int:
    """The generator seed of ``split`` (train and test never share strings by construction)."""
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid choices: {', '.join(_SPLITS)}")
    return int(seed) * len(_SPLITS) + _SPLITS[split]


def load_tensors(name: str, root: str, split: str, *, size: int | None, limit: int | None,
                 download: bool = False) -> tuple[Tensor, Tensor]:
    """The data-set loader: uint8 inputs (N,1,1,L) and int64 labels of ``size``-bit strings.

    Labels are (N, L) for prefix sums, (N,) for parity (the data set ``name`` says which).

    ``root`` and ``download`` are unused (nothing is read or fetched); ``limit`` keeps the first
    strings, which are the same whatever the limit; ``size`` None: the default length.
    """
    import torch

    length = check_length(STRING_OPTIONS["size"].default if size is None else size,
                          "data.options.size (the string length)")
    n = N_TRAIN if split == "train" else N_TEST
    bits, labels = generate(name, n, length, split_seed(split))
    if limit is not None:
        bits, labels = bits[:limit], labels[:limit]
    x = torch.from_numpy(np.ascontiguousarray(bits)).view(len(bits), 1, 1, length)
    return x, torch.from_numpy(np.ascontiguousarray(labels))


def string_files(name: str, root: str, sizes: tuple[int, ...]) -> dict[str, str]:
    """The data fingerprint: ``{"<name>/<split>-<L>": sha256}`` of the generated arrays."""
    out: dict[str, str] = {}
    for length in sorted(set(sizes)):
        for split in _SPLITS:
            n = N_TRAIN if split == "train" else N_TEST
            bits, labels = generate(name, n, length, split_seed(split))
            digest = hashlib.sha256(bits.tobytes() + labels.astype("<i8").tobytes()).hexdigest()
            out[f"{name}/{split}-{length}"] = digest
    return out


def string_side(length: int) -> int:
    """Width in 'pixels' of a ``length``-bit string: the length itself."""
    return check_length(length)


def _length_rule(value: Any) -> str | None:
    return None if 1 <= value <= MAX_LENGTH else f"a string length in 1..{MAX_LENGTH} bits"


STRING_OPTIONS = sized_options(
    32, "string length the run trains and tests on, in bits (Bansal et al. train on 32)",
    "also evaluate on strings of this length, or of each length of a list (e.g. 64 or [64, 128])",
    _length_rule)

register_dataset(DatasetSpec(
    "prefix_sums", 1, None, 2, "per_position", "recurdepth.data.strings:load_tensors", 100,
    side_of_size=string_side, files="recurdepth.data.strings:string_files",
    options=STRING_OPTIONS,
    description="prefix sums of random bit strings (Bansal et al. 2022), generated from a seed"))
register_dataset(DatasetSpec(
    "parity", 1, None, 2, "per_string", "recurdepth.data.strings:load_tensors", 100,
    side_of_size=string_side, files="recurdepth.data.strings:string_files",
    options=STRING_OPTIONS,
    description="parity of random bit strings (one label per string), generated from a seed"))


__all__ = ["DATA_SEED", "KINDS", "MAX_LENGTH", "N_TEST", "N_TRAIN", "PerPosition", "PerString",
           "STRING_OPTIONS", "check_length", "generate", "load_tensors", "parity", "prefix_sums", "random_bits",
           "split_seed", "string_files", "string_side"]
