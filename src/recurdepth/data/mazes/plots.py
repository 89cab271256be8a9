"""Figures of maze data sets: an example grid (paper Figure 3) and path-length histograms (Figure 4)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from recurdepth.data.mazes.dataset import MazeSplit
from recurdepth.io import atomic_write


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return atomic_write(path, lambda p: p.write_bytes(buf.getvalue()))


def show_grid(split: MazeSplit, path: str | os.PathLike, *, count: int = 8, columns: int = 4,
              start: int = 0) -> Path:
    """Save a PNG of ``count`` mazes from ``start``, each input beside its solution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, min(count, len(split) - start))
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(2.2 * 2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k in range(count):
        i = start + k
        r, c = divmod(k, columns)
        axes[r, 2 * c].imshow(split.inputs[i].transpose(1, 2, 0), interpolation="nearest")
        axes[r, 2 * c].set_title(f"#{i} input", fontsize=8)
        axes[r, 2 * c + 1].imshow(split.solutions[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r, 2 * c + 1].set_title(f"#{i} solution", fontsize=8)
    fig.suptitle(f"{split.size}x{split.size} mazes ({split.split})", fontsize=10)
    out = _save(fig, path)
    plt.close(fig)
    return out


def path_length_histogram(lengths: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Save a PNG histogram of optimal path lengths (cell steps), one series per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max((int(v.max()) for v in lengths.values() if v.size), default=1)
    bins = np.arange(0, top + 2) - 0.5
    for label, values in lengths.items():
        ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.45,
                label=f"{label} (mean {values.mean():.2f})" if values.size else label)
    ax.set_xlabel("optimal path length (cell steps)")
    ax.set_ylabel("fraction of mazes")
    ax.legend(fontsize=8)
    out = _save(fig, path)
    plt.close(fig)
    return out
