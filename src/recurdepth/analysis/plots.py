"""Figure helpers shared by the analyses: a headless matplotlib and atomic PNG writes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # analyses run on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recurdepth.io import atomic_write  # noqa: E402

__all__ = ["heatmap", "plt", "save_figure"]


def save_figure(fig: matplotlib.figure.Figure, path: str, *, dpi: int = 130) -> None:
    """Write ``fig`` as a PNG atomically and close it."""
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=dpi))
    plt.close(fig)


def heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], path: str,
            *, title: str, xlabel: str, ylabel: str, colorbar: str, vmin: float = 0.0,
            vmax: float = 1.0) -> None:
    """A labelled heat map with the value written in every cell and a colour bar."""
    rows, cols = matrix.shape
    # A floor on the size keeps long axis labels clear of the title on small matrices.
    fig, ax = plt.subplots(figsize=(max(6.0, 2.0 + 0.75 * cols), max(4.8, 1.8 + 0.6 * rows)))
    image = ax.imshow(matrix, cmap="magma", vmin=vmin, vmax=vmax, origin="lower")
    ax.set_xticks(range(cols), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(rows), row_labels)
    if rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                value = matrix[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if value > (vmin + vmax) / 2 else "white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=colorbar, fraction=0.046, pad=0.04)
    save_figure(fig, path)
