"""Statistics of maze splits: exact duplicate and overlap counts, path-length distributions."""

from __future__ import annotations

import numpy as np

from recurdepth.data.mazes import kernels
from recurdepth.data.mazes.dataset import MazeSplit
from recurdepth.data.mazes.generate import path_length_stats


def _rows(inputs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(inputs).reshape(inputs.shape[0], int(np.prod(inputs.shape[1:])))


def distinct_mask(inputs: np.ndarray) -> np.ndarray:
    """True for the first occurrence of every distinct maze image (exact: hash, then compare bytes)."""
    rows = _rows(inputs)
    hashes = kernels.row_hashes(rows)
    order = np.argsort(hashes, kind="stable")
    keep = np.ones(rows.shape[0], bool)
    sorted_h = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_h[1:] != sorted_h[:-1]])
    ends = np.r_[starts[1:], rows.shape[0]]
    for lo, hi in zip(starts, ends):
        if hi - lo < 2:
            continue
        group = order[lo:hi]  # equal hashes: compare the bytes themselves
        for j, i in enumerate(group[1:], 1):
            if any(np.array_equal(rows[i], rows[k]) for k in group[:j] if keep[k]):
                keep[i] = False
    return keep


def duplicate_count(inputs: np.ndarray) -> int:
    """Number of mazes that repeat an earlier maze of the same array."""
    return int(inputs.shape[0] - distinct_mask(inputs).sum())


def overlap_count(inputs: np.ndarray, reference: np.ndarray) -> int:
    """Number of mazes in ``inputs`` identical to some maze in ``reference``."""
    if inputs.shape[0] == 0 or reference.shape[0] == 0 or inputs.shape[1:] != reference.shape[1:]:
        return 0
    rows, ref = _rows(inputs), _rows(reference)
    h, ref_h = kernels.row_hashes(rows), kernels.row_hashes(ref)
    order = np.argsort(ref_h)
    ref_sorted = ref_h[order]
    count = 0
    for i in np.flatnonzero(np.isin(h, ref_h)):
        lo, hi = np.searchsorted(ref_sorted, h[i], "left"), np.searchsorted(ref_sorted, h[i], "right")
        count += any(np.array_equal(rows[i], ref[k]) for k in order[lo:hi])
    return count


def split_statistics(splits: dict[str, MazeSplit]) -> dict[str, dict]:
    """Per split: count, duplicates (and rate), overlap with train, path-length statistics."""
    out = {}
    for name, split in splits.items():
        dup = duplicate_count(split.inputs)
        entry = {"count": len(split), "duplicates": dup,
                 "duplicate_rate": dup / len(split) if len(split) else 0.0,
                 "path_length": path_length_stats(split.path_lengths())}
        if name != "train" and "train" in splits:
            entry["overlap_with_train"] = overlap_count(split.inputs, splits["train"].inputs)
        out[name] = entry
    return out
