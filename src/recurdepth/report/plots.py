"""The paper's figures: accuracy vs effective depth (Fig. 2, 5) and vs test-time iterations
(on the run's own test set and, from saved evaluations, on other maze sizes or splits).

Plots are deterministic: the same results give byte-identical PNG files (no date or software
version in the metadata, no randomness).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from matplotlib.ticker import MaxNLocator  # noqa: E402

from recurdepth.io import atomic_write  # noqa: E402
from recurdepth.report.results import GroupStat, iteration_stats, panels  # noqa: E402

MODE_STYLE = {
    "recurrent": {"label": "recurrent", "color": "#1f5fa8", "hatch": ""},
    "feedforward": {"label": "feed-forward", "color": "#e08a1e", "hatch": "//"},
}
_PNG_METADATA = {"Software": None}
_SVG_METADATA = {"Date": None, "Creator": None}


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write the PNG at ``path`` and an SVG beside it (vector, for papers)."""
    # Atomic and deterministic: a fixed DPI, no "Software"/date entry, fixed SVG element ids.
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, metadata=_PNG_METADATA))
    with matplotlib.rc_context({"svg.hashsalt": "recurdepth"}):
        atomic_write(path.with_suffix(".svg"),
                     lambda p: fig.savefig(p, format="svg", metadata=_SVG_METADATA))
    plt.close(fig)
    return path


def _grid(n: int, width: float = 4.8, height: float = 3.8) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6),
                             squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _suptitle(fig: plt.Figure, text: str) -> None:
    # Wrap to the figure's width so a one-panel figure does not cut its title off.
    chars = max(30, int(fig.get_figwidth() * 10))
    fig.suptitle(textwrap.fill(text, chars), fontsize=11)


def _ylabel(panel: str) -> str:
    return "test accuracy (% mazes solved)" if panel.startswith("mazes") else "test accuracy (%)"


def plot_accuracy_vs_depth(groups: list[GroupStat], path: str | Path, *,
                           title: str = "") -> Path | None:
    """Grouped bars per effective depth, recurrent and feed-forward side by side, mean ± SE.

    One panel per data set / family (and any other grid axis); each trial is a dot on its bar.
    Returns None when no group has a finished run.
    """
    by_panel = {p: gs for p, gs in panels(groups).items()
                if any(g.test_accs for g in gs) and any(g.effective_depth for g in gs)}
    if not by_panel:
        return None
    fig, axes = _grid(len(by_panel))
    for ax, (panel, gs) in zip(axes, by_panel.items()):
        depths = sorted({g.effective_depth for g in gs if g.effective_depth is not None})
        modes = [m for m in MODE_STYLE if any(g.mode == m for g in gs)]
        modes += sorted({g.mode for g in gs} - set(modes))
        width = 0.8 / max(1, len(modes))
        top = 0.0
        for k, mode in enumerate(modes):
            style = MODE_STYLE.get(mode, {"label": mode, "color": "#666666", "hatch": ".."})
            xs, means, errs, dots, tops = [], [], [], [], []
            for i, depth in enumerate(depths):
                g = next((g for g in gs if g.mode == mode and g.effective_depth == depth), None)
                if g is None or not g.test_accs:
                    continue
                mean, se = g.test
                x = i + (k - (len(modes) - 1) / 2) * width
                xs.append(x)
                means.append(mean)
                errs.append(se or 0.0)
                dots += [(x, v) for v in g.test_accs]
                tops.append(max(mean + (se or 0.0), *g.test_accs))
                top = max(top, tops[-1])
            ax.bar(xs, means, width * 0.92, yerr=errs, capsize=4, color=style["color"],
                   hatch=style["hatch"], edgecolor="black", linewidth=0.6, alpha=0.9,
                   label=style["label"], error_kw={"elinewidth": 1.2, "ecolor": "black"})
            if dots:
                ax.scatter([d[0] for d in dots], [d[1] for d in dots], s=9, facecolor="white",
                           edgecolor="black", linewidth=0.6, zorder=3, label=None)
            for x, m, t in zip(xs, means, tops):  # the mean, written above its error bar
                ax.annotate(f"{m:.1f}", (x, t), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(depths)))
        ax.set_xticklabels([_depth_label(d, gs, modes) for d in depths], fontsize=8)
        ax.set_xlabel("effective depth (parameters per mode below)")
        ax.set_ylabel(_ylabel(panel))
        ax.set_ylim(0, min(100.0, top * 1.15 + 2) if top > 0 else 1)
        ax.set_title(panel, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=8, loc="upper left")
    _suptitle(fig, title or "Accuracy vs effective depth (mean ± standard error over trials)")
    fig.tight_layout()
    return _save(fig, Path(path))


def _depth_label(depth: int, gs: list[GroupStat], modes: list[str]) -> str:
    """Tick label: the depth, then each mode's parameter count (the claim's other half)."""
    lines = [str(depth)]
    for mode in modes:
        g = next((g for g in gs if g.mode == mode and g.effective_depth == depth), None)
        if g is not None and g.parameters:
            short = MODE_STYLE.get(mode, {"label": mode})["label"]
            lines.append(f"{short}: {_short_int(g.parameters)}")
    return "\n".join(lines)


def _short_int(n: int) -> str:
    if n >= 10_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


def plot_accuracy_vs_iterations(groups: list[GroupStat], path: str | Path, *,
                                title: str = "") -> Path | None:
    """Test accuracy of recurrent models vs test-time iterations, one line per trained depth.

    A star marks the number of iterations each model was trained with. Returns None when no
    recurrent run reports accuracy at more than one iteration count.
    """
    cells: dict[str, list[tuple[GroupStat, list[tuple[int, float, float | None, int]]]]] = {}
    for g in [g for gs in panels(groups).values() for g in gs]:
        if g.mode == "recurrent":
            cells.setdefault(f"{_axis(g)} · recurrent", []).append((g, g.per_iter_stats()))
    return _plot_iteration_curves(cells, path, title or "Recurrent models: accuracy vs test-time "
                                  "iterations (mean ± standard error over trials; ★ and dotted "
                                  "line = trained iterations)")


def plot_saved_evaluations(groups: list[GroupStat], path: str | Path, *,
                           title: str = "") -> Path | None:
    """Accuracy vs test-time iterations of recurrent models in their saved evaluations
    (``recurdepth eval``) other than on their own test set: one panel per panel and setting.

    The own test set is in :func:`plot_accuracy_vs_iterations`. Returns None when no saved
    evaluation of another setting has more than one iteration count.
    """
    cells: dict[str, list[tuple[GroupStat, list[tuple[int, float, float | None, int]]]]] = {}
    for g in [g for gs in panels(groups).values() for g in gs]:
        if g.mode != "recurrent":
            continue
        for setting in g.eval_settings():
            if setting == g.trained_setting:
                continue
            stats = iteration_stats([e.per_iter for e in g.evals[setting] if e.per_iter])
            cells.setdefault(f"{_axis(g)} · recurrent · on {setting.label()}", []).append(
                (g, stats))
    return _plot_iteration_curves(cells, path, title or "Saved evaluations: accuracy vs test-time "
                                  "iterations (★ and dotted line = trained iterations)",
                                  any_split=True)


def _base_family(family: str) -> str:
    """The family a variant belongs to (``maze_recall`` → ``maze``); itself if none or unknown."""
    from recurdepth.errors import ConfigError
    from recurdepth.models.spec import family_spec

    try:
        return family_spec(family).variant_of or family
    except ConfigError:  # a database from a family this install does not have
        return family


def _axis(g: GroupStat) -> str:
    """Axis of ``g`` in the iteration plots: its data set and base family.

    Configurations that differ only in a variant of the family or an option (the recall solver
    beside the paper's, recall on and off) are curves on one axis, so they compare directly.
    """
    return f"{g.dataset} · {_base_family(g.family)}"


def _line_name(g: GroupStat, axis: str) -> str:
    """``maze_recall · objective=progressive: `` when ``g``'s panel says more than its axis."""
    rest = g.panel.removeprefix(f"{g.dataset} · ")
    return "" if axis.startswith(f"{g.dataset} · {rest} ·") else f"{rest}: "


def _plot_iteration_curves(cells: dict[str, list[tuple[GroupStat, list[tuple[int, float,
                                                                              float | None,
                                                                              int]]]]],
                           path: str | Path, title: str, *, any_split: bool = False) -> Path | None:
    """One panel per title, one line (mean ± SE per iteration count) per group; None if empty.

    Iteration counts reached by fewer trials than the rest continue the line dashed and hollow.

    ``any_split``: the panels are not all on a test split, so the axis does not say "test".
    """
    by_panel = {t: [(g, st) for g, st in curves if len(st) > 1] for t, curves in cells.items()}
    by_panel = {t: curves for t, curves in by_panel.items() if curves}
    if not by_panel:
        return None
    fig, axes = _grid(len(by_panel))
    cmap = plt.get_cmap("viridis")
    for ax, (panel, curves) in zip(axes, by_panel.items()):
        for j, (g, stats) in enumerate(curves):
            color = cmap(j / max(1, len(curves) - 1) * 0.85)
            ms = [s[1] for s in stats]
            # Counts only some trials reached (one evaluated further) are drawn hollow and
            # dashed, so fewer trials never pass for a change in accuracy.
            full = max(s[3] for s in stats)
            whole = [s for s in stats if s[3] == full]
            part = [s for s in stats if s[3] < full]
            ax.errorbar([s[0] for s in whole], [s[1] for s in whole],
                        yerr=[s[2] or 0.0 for s in whole], color=color, marker="o",
                        markersize=3, capsize=2,
                        label=f"{_line_name(g, panel)}trained depth {g.effective_depth} "
                              f"({g.iters} it.)")
            if part:
                tail = whole[-1:] + part
                ax.errorbar([s[0] for s in tail], [s[1] for s in tail],
                            yerr=[s[2] or 0.0 for s in tail], color=color, marker="o",
                            markersize=4, markerfacecolor="white", capsize=2, linestyle="--",
                            markevery=list(range(1, len(tail))), errorevery=(1, 1),
                            label=f"{_line_name(g, panel)}depth {g.effective_depth} past "
                                  f"{whole[-1][0]} it.: "
                                  f"{min(s[3] for s in part)} of {full} trials")
            if g.iters and g.iters <= len(ms):
                ax.plot([g.iters], [ms[g.iters - 1]], marker="*", markersize=12, color=color,
                        markeredgecolor="black", linestyle="none")
                ax.axvline(g.iters, color=color, linestyle=":", linewidth=1, alpha=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("test-time iterations")
        ax.set_ylabel(_ylabel(panel).replace("test ", "") if any_split else _ylabel(panel))
        ax.set_title(panel, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    _suptitle(fig, title)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_learning_curves(groups: list[GroupStat], path: str | Path, *,
                         title: str = "") -> Path | None:
    """Train (dashed) and test (solid) accuracy per epoch, one line per run, one panel per depth.

    Colours tell recurrent from feed-forward. Returns None when no run has a curve.
    """
    cells: dict[tuple[str, int | None], list[GroupStat]] = {}
    for panel, gs in panels(groups).items():
        for g in gs:
            # A one-iteration group shown under both modes is the same runs: drawn once.
            if any(c.points for c in g.curves) and g.trained_as is None:
                cells.setdefault((panel, g.effective_depth), []).append(g)
    if not cells:
        return None
    fig, axes = _grid(len(cells), width=4.4, height=3.4)
    for ax, ((panel, depth), gs) in zip(axes, sorted(cells.items(), key=lambda kv: (
            kv[0][0], kv[0][1] or 0))):
        for g in gs:
            style = MODE_STYLE.get(g.mode, {"label": g.mode, "color": "#666666"})
            for k, c in enumerate(g.curves):
                label = style["label"] if k == 0 else None
                tr = [(e, v) for e, v, _ in c.points if v is not None]
                te = [(e, v) for e, _, v in c.points if v is not None]
                if te:
                    ax.plot([e for e, _ in te], [v for _, v in te], color=style["color"],
                            linewidth=1.2, marker="o", markersize=2.5, alpha=0.9,
                            label=f"{label} test" if label else None)
                if tr:
                    ax.plot([e for e, _ in tr], [v for _, v in tr], color=style["color"],
                            linewidth=1.0, linestyle="--", alpha=0.8,
                            label=f"{label} train" if label else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(_ylabel(panel).replace("test ", ""))
        top = max((v for g in gs for c in g.curves for _, tr, te in c.points
                   for v in (tr, te) if v is not None), default=0.0)
        ax.set_ylim(0, min(100.0, top * 1.1 + 2))
        ax.set_title(f"{panel} · depth {depth}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    _suptitle(fig, title or "Learning curves: test (solid) and train (dashed, no augmentation) "
              "accuracy per epoch, one line per run")
    fig.tight_layout()
    return _save(fig, Path(path))


__all__ = ["MODE_STYLE", "plot_accuracy_vs_depth", "plot_accuracy_vs_iterations",
           "plot_learning_curves", "plot_saved_evaluations"]
