"""Token sequences for looped transformers: multi-digit addition and copy, made from a seed.

**Addition** (the aligned form of looped-transformer papers): position ``i`` holds the token
``10·a_i + b_i`` of the ``i``-th digits of both operands, least significant first, and is
labelled with the ``i``-th digit of the sum. A data set of size ``N`` has ``N + 1`` positions
(one per digit of the longest possible sum); digits beyond an operand's length are 0, so the
last positions carry (0, 0) and are labelled with the final carry or 0. Training sums have
operands of 1..N digits each (drawn independently); test sums have operands of exactly N digits,
the hardest sums of their length, so "tested at 24 digits" means 24-digit operands.

**Copy**: ``N`` random digits followed by ``N`` separator tokens; the labels repeat the digits
at both halves, so the second half must be read back from the first (2N positions).

Every position is labelled and counts; an example is right when all its positions are (the
per-position task of :mod:`recurdepth.data.strings`). The same (seed, size, split, count) always
gives byte-identical arrays; a run's data fingerprint is their checksum. With
``data.options.fresh`` a run trains on a new set every epoch after the first (19,200 new sums per
epoch instead of the same 19,200 ten times), each a pure function of the data seed and the
epoch, so runs stay deterministic and resumable. Inputs are stored like
images, ``uint8 (N, 1, 1, positions)``, and reach the model as the token ids, exactly, as
floats (the task's input range is 1; the transformer's stem embeds them).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from recurdepth.data.options import DataOption, sized_options
from recurdepth.data.registry import DatasetSpec, register_dataset
from recurdepth.data.tasks.per_position import PerPosition
from recurdepth.data.tasks import register_task
from recurdepth.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

MAX_DIGITS = 1000  # longest operand (copy: sequence) a data set is made with
SEPARATOR = 10  # the copy task's "now write it back" token
# Token vocabulary of each data set: the transformer's embedding has exactly this many rows.
VOCAB = {"addition": 100, "copy": 11}
N_TRAIN = 19_200  # 150 steps of 128 per epoch: 10 epochs = the 1,500 steps
N_TEST = 1_000  # the measurement: 1,000 fresh sums per length
DATA_SEED = 0  # fixed, like the strings': every run sees the same examples
_SPLITS = {"train": 0, "test": 1}


def check_digits(digits: int, key: str = "digits") -> int:
    """``digits`` as an int in 1..MAX_DIGITS, or a one-line ConfigError naming ``key``."""
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)):
        raise ConfigError(f"{key} must be a whole number of digits in 1..{MAX_DIGITS}, "
                          f"got {digits!r}")
    if not 1 <= int(digits) <= MAX_DIGITS:
        raise ConfigError(f"{key} must be in 1..{MAX_DIGITS} digits (the sequence cap), "
                          f"got {digits}")
    return int(digits)


def _rng(kind: str, digits: int, seed: int, draw: int = 0) -> np.random.Generator:
    tag = sorted(VOCAB).index(kind)
    # draw 0 keeps the three-word entropy of the fixed sets (their bytes never change); a later
    # draw adds a non-zero fourth word, so its stream differs from every fixed set's.
    words = [int(seed), digits, tag] + ([int(draw)] if draw else [])
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def _operand(rng: np.random.Generator, n: int, digits: int, lengths: np.ndarray) -> np.ndarray:
    """``n`` numbers as digit arrays (n, digits), least significant first, of ``lengths`` digits.

    A number of more than one digit has a non-zero leading digit, so it has exactly its length.
    """
    d = rng.integers(0, 10, size=(n, digits), dtype=np.int64)
    lead = rng.integers(1, 10, size=n, dtype=np.int64)
    rows = np.arange(n)
    d[rows, lengths - 1] = np.where(lengths > 1, lead, d[rows, lengths - 1])
    d[np.arange(digits)[None, :] >= lengths[:, None]] = 0
    return d


def addition(n: int, digits: int, seed: int, *, exact: bool,
             draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` aligned sums: tokens (n, digits+1) uint8 and sum digits (n, digits+1) int64.

    ``exact``: both operands have exactly ``digits`` digits; otherwise 1..digits each.
    ``draw``: 0 is the fixed set of ``seed``; draw d > 0 is another set from the same seed.
    """
    digits = check_digits(digits)
    rng = _rng("addition", digits, seed, draw)
    if exact:
        la = lb = np.full(n, digits, dtype=np.int64)
    else:
        la, lb = rng.integers(1, digits + 1, size=(2, n), dtype=np.int64)
    a = np.pad(_operand(rng, n, digits, la), ((0, 0), (0, 1)))
    b = np.pad(_operand(rng, n, digits, lb), ((0, 0), (0, 1)))
    out = np.empty_like(a)
    carry = np.zeros(n, dtype=np.int64)
    for i in range(digits + 1):  # schoolbook addition, least significant digit first
        s = a[:, i] + b[:, i] + carry
        out[:, i], carry = s % 10, s // 10
    return (10 * a + b).astype(np.uint8), out


def copy_digits(n: int, digits: int, seed: int, draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` copy examples: tokens ``[x, SEP·digits]`` (uint8) and labels ``[x, x]`` (int64)."""
    digits = check_digits(digits)
    x = _rng("copy", digits, seed, draw).integers(0, 10, size=(n, digits), dtype=np.int64)
    tokens = np.concatenate([x, np.full_like(x, SEPARATOR)], axis=1)
    return tokens.astype(np.uint8), np.concatenate([x, x], axis=1)


def generate(kind: str, split: str, n: int, digits: int, seed: int,
             draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and labels of ``n`` examples of ``kind`` (addition | copy) for ``split``.

    ``draw`` 0 is the split's fixed set; draw d > 0 another set of the same split (fresh
    training examples of epoch d, ``data.options.fresh``).
    """
    if kind not in VOCAB:
        raise ConfigError(f"unknown sequence task {kind!r}; valid choices: {', '.join(VOCAB)}")
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid choices: {', '.join(_SPLITS)}")
    # Train and test draw from different seeds, so they share no example by construction.
    split_seed = 2 * int(seed) + _SPLITS[split]
    if isinstance(draw, bool) or not isinstance(draw, (int, np.integer)) or draw < 0:
        raise ConfigError(f"draw must be a whole number >= 0 (0: the fixed set), got {draw!r}")
    if kind == "addition":
        return addition(n, digits, split_seed, exact=split == "test", draw=int(draw))
    return copy_digits(n, digits, split_seed, int(draw))


def positions(kind: str, digits: int) -> int:
    """Sequence length of an example of ``digits`` digits (addition: N+1, copy: 2N)."""
    digits = check_digits(digits)
    return digits + 1 if kind == "addition" else 2 * digits


def load_tensors(name: str, root: str, split: str, *, size: int | None, limit: int | None,
                 download: bool = False) -> tuple[Tensor, Tensor]:
    """The data-set loader: uint8 tokens (N,1,1,P) and int64 labels (N,P) of ``size``-digit data.

    ``root`` and ``download`` are unused (nothing is read or fetched); ``limit`` keeps the first
    examples, which are the same whatever the limit.
    """
    return _tensors(name, split, size, limit)


def _tensors(name: str, split: str, size: int | None, limit: int | None,
             draw: int = 0) -> tuple[Tensor, Tensor]:
    """Draw ``draw`` of ``split`` at ``size`` digits, its first ``limit`` examples: tokens as
    uint8 (N, 1, 1, positions) and labels as int64 (N, positions) tensors."""
    import torch

    digits = check_digits(SEQUENCE_OPTIONS["size"].default if size is None else size,
                          "data.options.size (the number of digits)")
    n = N_TRAIN if split == "train" else N_TEST
    tokens, labels = generate(name, split, n, digits, DATA_SEED, draw=draw)
    if limit is not None:
        tokens, labels = tokens[:limit], labels[:limit]
    x = torch.from_numpy(np.ascontiguousarray(tokens)).view(len(tokens), 1, 1, tokens.shape[1])
    return x, torch.from_numpy(np.ascontiguousarray(labels))


def epoch_tensors(name: str, root: str, *, size: int | None, limit: int | None,
                  epoch: int) -> tuple[Tensor, Tensor]:
    """The training set of ``epoch`` with ``data.options.fresh``: epoch 0 is the fixed training
    set (what train accuracy is measured on), epoch e > 0 ``N_TRAIN`` new examples of draw e.

    A pure function of (data seed, size, epoch), so a resumed run trains on the same sums.
    """
    return _tensors(name, "train", size, limit, draw=int(epoch))


def sequence_files(name: str, root: str, sizes: tuple[int, ...]) -> dict[str, str]:
    """The data fingerprint: ``{"<name>/<split>-<digits>": sha256}`` of the generated arrays."""
    out: dict[str, str] = {}
    for digits in sorted(set(sizes)):
        for split in _SPLITS:
            n = N_TRAIN if split == "train" else N_TEST
            tokens, labels = generate(name, split, n, digits, DATA_SEED)
            digest = hashlib.sha256(tokens.tobytes() + labels.astype("<i8").tobytes()).hexdigest()
            out[f"{name}/{split}-{digits}"] = digest
    return out


@register_task
class SequenceTask(PerPosition):
    """Per-position labels on token sequences; exact match; sizes are numbers of digits."""

    name = "sequence"
    input_range = 1.0  # token ids are stored as they are: the model's stem embeds them

    def size_text(self, size: int) -> str:
        """How reports name examples of ``size``: ``24-digit operands``."""
        return f"{size}-digit operands"


def _digits_rule(value: Any) -> str | None:
    return None if 1 <= value <= MAX_DIGITS else f"a number of digits in 1..{MAX_DIGITS} (the cap)"


SEQUENCE_OPTIONS = {
    **sized_options(
        8, "operand digits (copy: sequence digits) the run trains on (1..N) and tests on "
        "(exactly N)", "also evaluate on examples of this many digits, or of each count of a "
        "list (e.g. 16 or [16, 24])", _digits_rule),
    # Off by default: the runs made before the option trained on the fixed set, and keep their
    # identity (ADDED_KEYS in training.config).
    "fresh": DataOption(False, f"true: every epoch after the first trains on {N_TRAIN:,} new "
                        "examples (drawn from the data seed and the epoch); false: the same "
                        "fixed set every epoch", kind=bool),
}

_COMMON: dict[str, Any] = dict(files="recurdepth.data.sequences:sequence_files",
                               options=SEQUENCE_OPTIONS,
                               epoch_loader="recurdepth.data.sequences:epoch_tensors")
register_dataset(DatasetSpec(
    "addition", 1, None, 10, "sequence", "recurdepth.data.sequences:load_tensors", 128,
    side_of_size="recurdepth.data.sequences:addition_positions", **_COMMON,
    description="multi-digit addition, aligned digit-pair tokens, least significant first"))
register_dataset(DatasetSpec(
    "copy", 1, None, 10, "sequence", "recurdepth.data.sequences:load_tensors", 128,
    side_of_size="recurdepth.data.sequences:copy_positions", **_COMMON,
    description="copy N random digits after N separator tokens"))


def addition_positions(digits: int) -> int:
    """Positions of an addition example of ``digits``-digit operands: ``digits + 1``."""
    return positions("addition", digits)


def copy_positions(digits: int) -> int:
    """Positions of a copy example of ``digits`` digits: ``2·digits``."""
    return positions("copy", digits)


__all__ = ["DATA_SEED", "MAX_DIGITS", "N_TEST", "N_TRAIN", "SEPARATOR", "SEQUENCE_OPTIONS", "VOCAB", "SequenceTask", "addition",
           "addition_positions", "check_digits", "copy_digits", "copy_positions", "epoch_tensors",
           "generate", "load_tensors", "positions", "sequence_files"]
