"""Activation reuse (paper §5, Figures 6, 9–11): is a filter active on several iterations?

For every image-filter pair, count the positive activations (spatial positions > 0) in the body
state after each iteration, divide by the count at that pair's most active iteration, and
histogram the 2nd … kth most active ratios. A ratio above 0 on iterations other than the most
active one means the filter is reused. Pairs that are never active are left out of the histogram
(their ratio is undefined) and counted, as are filters never active on any image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from recurdepth.analysis.features import feature_batches, require_unrolled, resolve_iters
from recurdepth.errors import ConfigError, choices_message

UNITS = ("pair", "filter")


def positive_counts(states: list[Tensor]) -> Tensor:
    """Positive activations per (iteration, image, filter) of states (N, C, ...) → (iters, N, C)."""
    return torch.stack([(s > 0).reshape(s.shape[0], s.shape[1], -1).sum(2) for s in states])


def activation_counts(model: torch.nn.Module, inputs: Tensor, *, iters: int | None = None,
                      batch_size: int = 100, device: str | torch.device = "cpu") -> Tensor:
    """Positive-activation counts of the body state after every iteration: (iters, N, C), int64."""
    net = require_unrolled(model)
    resolve_iters(net, iters)
    parts = [positive_counts(f).cpu() for f in feature_batches(
        net, inputs, batch_size=batch_size, iters=iters, include_stem=False, device=device)]
    return torch.cat(parts, dim=1)


@dataclass
class ReuseResult:
    """Histogram of activity ratios: ``histogram[r]`` is for the (r+2)th most active iteration."""

    unit: str
    iters: int
    images: int
    filters: int
    ranks: list[int]
    bin_edges: list[float]
    histogram: list[list[int]]
    mean_ratio: list[float]
    active_pairs: int
    inactive_pairs: int
    never_active_filters: int

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def reuse_histogram(counts: Tensor, *, k: int | None = None, bins: int = 10,
                    unit: str = "pair") -> ReuseResult:
    """Histogram the 2nd … kth most active iteration's share of the most active iteration.

    ``counts`` (iters, N, C) from :func:`activation_counts`. ``unit="pair"`` (the paper's §5)
    normalises every image-filter pair separately; ``unit="filter"`` first sums each filter's
    counts over the images. ``k`` defaults to ``min(5, iters)`` (the paper's Figure 6).
    """
    if unit not in UNITS:
        raise ConfigError(choices_message("reuse unit", unit, UNITS))
    iters, images, filters = counts.shape
    if iters < 2:
        raise ConfigError(f"reuse compares a model's iterations, and this one has {iters}: "
                          "analyse a run with at least 2 iterations / blocks")
    k = min(5, iters) if k is None else int(k)
    if not 2 <= k <= iters:
        raise ConfigError(f"k must be between 2 and the number of iterations ({iters}), got {k}; "
                          "reuse needs a model with at least 2 iterations")
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    c = counts.to(torch.float64)
    rows = c.sum(1).T if unit == "filter" else c.permute(1, 2, 0).reshape(-1, iters)
    ordered = rows.sort(dim=1, descending=True).values
    active = ordered[:, 0] > 0
    ratios = (ordered[active, 1:k] / ordered[active, :1]).numpy()
    edges = np.linspace(0.0, 1.0, bins + 1)
    histogram = [np.histogram(ratios[:, r], bins=edges)[0].tolist() for r in range(k - 1)]
    never_active = int((counts.sum((0, 1)) == 0).sum())
    return ReuseResult(
        unit=unit, iters=iters, images=images, filters=filters, ranks=list(range(2, k + 1)),
        bin_edges=edges.tolist(), histogram=histogram,
        mean_ratio=[float(ratios[:, r].mean()) if len(ratios) else 0.0 for r in range(k - 1)],
        active_pairs=int(active.sum()), inactive_pairs=int((~active).sum()),
        never_active_filters=never_active,
    )


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plot_reuse(results: dict[str, ReuseResult], path: str) -> None:
    """Bar chart like the paper's Figure 6: one panel per model, one bar colour per rank."""
    from recurdepth.analysis.plots import plt, save_figure

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False,
                             sharey=True)
    for ax, (title, res) in zip(axes[0], results.items()):
        edges = np.array(res.bin_edges)
        width = (edges[1] - edges[0]) / (len(res.ranks) + 1)
        for j, (rank, hist) in enumerate(reversed(list(zip(res.ranks, res.histogram)))):
            ax.bar(edges[:-1] + (j + 0.5) * width, hist, width=width,
                   label=f"{ordinal(rank)} most active")
        ax.set_title(f"{title}\n{res.active_pairs:,} active {res.unit}s, "
                     f"{res.never_active_filters} filters never active", fontsize=10)
        ax.set_xlabel("activations (compared to most active iteration)")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"number of {results[next(iter(results))].unit}s")
    save_figure(fig, path)
