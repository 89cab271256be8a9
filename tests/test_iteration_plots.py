"""The iteration plots put variants of one family on one axis (the paper's maze solver beside the
recall solver), and keep other families and data sets apart."""

from __future__ import annotations

import pytest

from recurdepth.report import plots
from recurdepth.report.results import EvalSetting, GroupStat, SavedEval


def _group(panel: str, family: str, dataset: str, depth: int, per_iter: list[float],
           extra: dict | None = None) -> GroupStat:
    g = GroupStat(panel=panel, family=family, mode="recurrent", dataset=dataset,
                  effective_depth=depth, iters=2, width=4, parameters=10, extra=extra or {},
                  trained_setting=EvalSetting("test", 7 if dataset.startswith("mazes") else None))
    g.per_iter.append(per_iter)
    other = EvalSetting("test", 9) if dataset.startswith("mazes") else EvalSetting("train")
    g.evals[other] = [SavedEval(per_iter[1], per_iter, 20)]
    return g


@pytest.fixture
def drawn(monkeypatch):
    """Each figure's visible axes as (title, legend labels, line y-values), instead of files."""
    out: list[list[tuple[str, list[str], list[list[float]]]]] = []

    def save(fig, path):
        axes = [ax for ax in fig.axes if ax.get_visible()]
        out.append([(ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()],
                     [list(line.get_ydata()) for line in ax.get_lines()
                      if line.get_marker() == "o"])  # the curves, not caps or trained-at lines
                    for ax in axes])
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", save)
    return out


def groups() -> list[GroupStat]:
    return [
        _group("mazes 7x7 · maze", "maze", "mazes 7x7", 12, [10.0, 20.0, 15.0]),
        _group("mazes 7x7 · maze_recall · objective=progressive", "maze_recall", "mazes 7x7",
               14, [5.0, 30.0, 40.0], extra={"train.objective": "progressive"}),
        _group("cifar10 · convnet", "convnet", "cifar10", 6, [50.0, 60.0, 61.0]),
    ]


def test_a_variant_shares_the_axis_of_its_family_in_both_iteration_plots(drawn, tmp_path):
    plots.plot_accuracy_vs_iterations(groups(), tmp_path / "a.png")
    plots.plot_saved_evaluations(groups(), tmp_path / "s.png")
    own, saved = drawn
    assert [t for t, _, _ in own] == ["cifar10 · convnet · recurrent",
                                      "mazes 7x7 · maze · recurrent"]
    assert [t for t, _, _ in saved] == [
        "cifar10 · convnet · recurrent · on train split",
        "mazes 7x7 · maze · recurrent · on test split, mazes 9x9"]
    for figure in (own, saved):
        _, labels, lines = figure[1]
        # The paper's solver is named by its axis; the recall solver by what sets it apart.
        assert labels == ["trained depth 12 (2 it.)",
                          "maze_recall · objective=progressive: trained depth 14 (2 it.)"]
        assert lines == [[10.0, 20.0, 15.0], [5.0, 30.0, 40.0]]
        assert figure[0][1] == ["trained depth 6 (2 it.)"]


def test_an_unknown_family_keeps_an_axis_of_its_own(drawn, tmp_path):
    gs = groups()[:1] + [_group("mazes 7x7 · gone", "gone", "mazes 7x7", 12, [1.0, 2.0])]
    plots.plot_accuracy_vs_iterations(gs, tmp_path / "a.png")
    (figure,) = drawn
    assert [t for t, _, _ in figure] == ["mazes 7x7 · gone · recurrent",
                                         "mazes 7x7 · maze · recurrent"]
