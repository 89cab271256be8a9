"""The paper's analysis results as presets: Tables 3, 6 and 7 (probes), Figure 6 (reuse), the CKA
values and Figures 7-8 (feature visualisation), with the paper's numbers beside ours.

The presets themselves (files, parsing, checks): :mod:`recurdepth.experiments.analysis_spec`.
The runs are trained through the sweep of that experiment (its run names and ids, so a finished
run is reused) in the experiment's folder beside the analysis folder: ``reproduce/fig2_cifar10``
next to ``reproduce/table3_probes``; the maze presets analyse the main job's own runs in
``reproduce/`` (offline: its mazes are generated). The quick form applies its overrides, which makes its own
experiment (``<of>-o<hash>``) and never touches the full-size runs.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError
from recurdepth.experiments.analysis_spec import AnalysisPreset
from recurdepth.io import atomic_write_json
from recurdepth.report.tables import Table

QUICK_NOTE = ("**Smoke form (--quick)**: tiny models trained briefly on a few images; these "
              "numbers check the pipeline, not the paper.")
REUSE_THRESHOLD = 0.2  # §5: "at least 20% of the activity of their most active iteration"


# -- running ------------------------------------------------------------------------------------

@dataclass
class PaperAnalysis:
    """What an analysis preset produced: the sweep, each analysis call, the comparison table."""

    preset: AnalysisPreset
    out: Path
    sweep: Any
    outputs: dict[int, list[Any]] = field(default_factory=dict)  # trial -> AnalysisOutput/group
    table: Table | None = None
    files: list[Path] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


def run_analysis_preset(preset: AnalysisPreset, out: str | Path, *, quick: bool = False,
                        data_root: str | Path | None = None, executor: Any = None,
                        device: str | None = None, progress: bool = True) -> PaperAnalysis:
    """Train (or reuse) the preset's runs, analyse them per trial and write the paper table.

    The runs train in ``<out>/../<experiment>`` (shared with the experiment's own preset); the
    analysis of trial t goes to ``<out>/trial-<t>/<group>``, the table to ``<out>/<name>.md``/
    ``.csv`` and every number to ``<out>/result.json``.
    """
    from recurdepth.experiments.sweep import run_sweep

    from recurdepth.experiments.spec import DEFAULT_PRESET

    out = Path(out)
    experiment = preset.experiment(quick=quick)
    sweep_dir = out.parent / experiment.name
    if preset.of == DEFAULT_PRESET:
        # The main job's own runs: `recurdepth reproduce` keeps them, and the mazes it
        # generates, in its folder itself (reproduce/), beside reproduce/<analysis preset>;
        # a smoke form's runs go beside it in their own folder, with their own mazes.
        if not quick:
            sweep_dir = out.parent
        data_root = sweep_dir / "data" if data_root is None else data_root
    if data_root is not None:
        experiment = experiment.with_data_root(Path(data_root).resolve())
    summary = run_sweep(experiment, sweep_dir, executor=executor, progress=progress)
    result = PaperAnalysis(preset, out, summary)
    if summary.failures:
        return result
    folders = _run_folders(experiment, summary.db_path, preset.runs)
    options = preset.analysis_options(quick=quick)
    device = device or _best_device()
    for trial in range(experiment.trials):
        result.outputs[trial] = [
            _analyse(preset, [folders[(label, trial)] for label in group], group,
                     out / f"trial-{trial}" / _folder_name(group), options, device, progress,
                     data_root)
            for group in preset.groups]
    table, findings = TABLES[preset.analysis](preset, result.outputs)
    if quick:
        table = dataclasses.replace(table, note=f"{QUICK_NOTE} {table.note}")
    table = dataclasses.replace(table, note=table.note + "".join(
        f"\n\n- {line}" if i == 0 else f"\n- {line}" for i, line in enumerate(findings)))
    result.table, result.findings = table, findings
    plot = FIGURES.get(preset.analysis)
    figures = [plot(table, result.outputs, out / f"{preset.name}.png")] if plot else []
    result.files = [*table.write(out), *figures, atomic_write_json(out / "result.json", {
        "preset": preset.name, "quick": quick, "experiment": experiment.name,
        "trials": experiment.trials, "options": options, "paper": preset.paper,
        "findings": findings, "table": {"header": table.csv_header, "rows": table.csv_rows},
        "outputs": {str(t): [{"group": g, "out": str(o.out), "result": o.result}
                             for g, o in zip(preset.groups, outs)]
                    for t, outs in result.outputs.items()}})]
    return result


def _folder_name(group: Sequence[str]) -> str:
    """A group's analysis folder: its run labels joined, spaces and slashes made safe."""
    return "_vs_".join(label.replace(" ", "-").replace("/", "-") for label in group)


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _run_folders(experiment: Any, db_path: Path, selectors: Mapping[str, Mapping[str, Any]]
                 ) -> dict[tuple[str, int], Path]:
    """(run label, trial) -> the trained run's folder, from the sweep's database."""
    from recurdepth.experiments.store import ResultStore

    with ResultStore.open_existing(db_path) as store:
        stored = {rec.id: rec.run_dir for rec in store.records()}
    folders: dict[tuple[str, int], Path] = {}
    for run in experiment.runs():
        for label, selector in selectors.items():
            if all(run.params.get(k) == v for k, v in selector.items()):
                folders[(label, run.params["trial"])] = stored[run.run_id]
    return folders


def _analyse(preset: AnalysisPreset, folders: list[Path], labels: list[str], out: Path,
             options: dict[str, Any], device: str, progress: bool,
             data_root: str | Path | None) -> Any:
    from recurdepth.analysis.registry import get_analysis

    fn = get_analysis(preset.analysis).load()
    second = folders[1] if len(folders) > 1 else None
    return fn(folders[0], second, labels=labels, out=out, device=device, progress=progress,
              data_root=None if data_root is None else Path(data_root).resolve(), **options)


# -- tables: ours beside the paper's --------------------------------------------------------------

def _stat(values: Sequence[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(values: Sequence[float], digits: int = 1) -> str:
    mean, sd = _stat(values)
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def _probes_table(preset: AnalysisPreset, outputs: dict[int, list[Any]]
                  ) -> tuple[Table, list[str]]:
    """Rows: per run and pooling, ours (mean ± SD over trials) and the paper's train / test."""
    cells: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for outs in outputs.values():
        for o in outs:
            for key, layers in o.result["models"].items():
                label, _, pool = key.partition(", pool ")
                pool = pool.split("x")[0]
                for i, r in enumerate(layers, start=1):
                    cells.setdefault((label, pool or "none", i), []).append(
                        (r["train_acc"], r["test_acc"]))
    rows_keys = list(dict.fromkeys((label, pool) for label, pool, _ in cells))
    width = max(i for _, _, i in cells)
    paper = {(p["run"], str(p.get("pool", "none"))): p for p in preset.paper}
    header = ["model", "pooling", "source",
              *[f"block / iter {i}: train / test %" for i in range(1, width + 1)]]
    rows, csv_rows = [], []
    for label, pool in rows_keys:
        ours = [cells.get((label, pool, i)) for i in range(1, width + 1)]
        shown = "none" if pool == "none" else f"{pool}x{pool}"
        rows.append([label, shown, f"ours ({len(outputs)} trial{'s' * (len(outputs) > 1)})", *[
            "" if c is None else f"{_fmt([a for a, _ in c])} / {_fmt([b for _, b in c])}"
            for c in ours]])
        ref = paper.get((label, pool))
        if ref:
            theirs = [f"{tr:.1f} / {te:.1f}" for tr, te in ref["values"]]
            rows.append(["", "", f"paper ({ref.get('source', '')})",
                         *theirs, *[""] * (width - len(theirs))])
        for i, c in enumerate(ours, start=1):
            if c is None:
                continue
            pv = ref["values"][i - 1] if ref and i <= len(ref["values"]) else (None, None)
            csv_rows.append([label, pool, i, *_stat([a for a, _ in c]),
                             *_stat([b for _, b in c]), pv[0], pv[1]])
    findings = _ordering_findings(cells, rows_keys, width)
    return Table(preset.name, preset.title, header, rows,
                 ["model", "pooling", "block", "train_acc", "train_sd", "test_acc", "test_sd",
                  "paper_train_acc", "paper_test_acc"], csv_rows,
                 note=f"Accuracy (%) of linear probes on the frozen features after each block / "
                      f"iteration, train / test; ours: {_over_trials(outputs)}."), findings


def _plot_cka(table: Table, outputs: Mapping[int, list[Any]], path: Path) -> Path:
    """One bar per pair: our CKA between the last layers (SD over trials) beside the paper's."""
    from recurdepth.analysis.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(1.8 + 2.2 * len(table.csv_rows), 3.8))
    for i, (pair, value, sd, paper) in enumerate(table.csv_rows):
        ax.bar(i - 0.18, value, width=0.34, yerr=sd, capsize=3 if sd else 0, color="C0",
               label="ours" if i == 0 else None)
        if paper is not None:
            ax.bar(i + 0.18, paper, width=0.34, color="C7", label="paper" if i == 0 else None)
    ax.set_xticks(range(len(table.csv_rows)))
    ax.set_xticklabels([row[0].replace(" vs ", "\nvs ") for row in table.csv_rows], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("CKA, last layers")
    ax.legend(fontsize=8)
    fig.suptitle(table.title, fontsize=9)
    save_figure(fig, str(path))
    return path


def _plot_reuse_pooled(table: Table, outputs: Mapping[int, list[Any]], path: Path) -> Path:
    """Figure 6 with every trial's image-filter pairs pooled: counts summed over the trials."""
    from recurdepth.analysis.reuse import ReuseResult, plot_reuse

    pooled: dict[str, dict[str, Any]] = {}
    for outs in outputs.values():
        for o in outs:
            for name, res in o.result["models"].items():
                acc = pooled.setdefault(name, {**res, "histogram": None, "active_pairs": 0,
                                               "inactive_pairs": 0, "never_active_filters": 0,
                                               "images": 0, "mean_ratio": []})
                acc["histogram"] = res["histogram"] if acc["histogram"] is None else [
                    [a + b for a, b in zip(x, y)] for x, y in zip(acc["histogram"],
                                                                   res["histogram"])]
                for key in ("active_pairs", "inactive_pairs", "never_active_filters", "images"):
                    acc[key] += res[key]
                acc["mean_ratio"].append(res["mean_ratio"])
    results = {}
    for name, acc in pooled.items():
        ratios = acc.pop("mean_ratio")
        acc["mean_ratio"] = [statistics.fmean(r[i] for r in ratios) for i in range(len(ratios[0]))]
        results[f"{name}, {len(ratios)} trial{'s' * (len(ratios) > 1)} pooled"] = ReuseResult(**acc)
    plot_reuse(results, str(path))
    return path


def _plot_against_paper(table: Table, outputs: Mapping[int, list[Any]], path: Path) -> Path:
    """Test accuracy per block / iteration: ours (mean, SD bars over trials) and the paper's."""
    from recurdepth.analysis.plots import plt, save_figure

    ours: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    paper: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for model, pool, block, _, _, test, test_sd, _, paper_test in table.csv_rows:
        ours.setdefault((model, pool), []).append((block, test, test_sd or 0.0))
        if paper_test is not None:
            paper.setdefault((model, pool), []).append((block, paper_test))
    pools = list(dict.fromkeys(pool for _, pool in ours))
    fig, axes = plt.subplots(1, len(pools), figsize=(5 * len(pools), 3.8), squeeze=False)
    for ax, pool in zip(axes[0], pools):
        for i, (model, p) in enumerate(k for k in ours if k[1] == pool):
            xs, ys, sds = zip(*ours[(model, p)])
            ax.errorbar(xs, ys, yerr=sds, fmt="o-", capsize=3, color=f"C{i}",
                        label=f"{model} (ours)")
            if (model, p) in paper:
                px, py = zip(*paper[(model, p)])
                ax.plot(px, py, "s--", color=f"C{i}", alpha=0.6, label=f"{model} (paper)")
        ax.set_title("no pooling" if pool == "none" else f"average pooling to {pool}x{pool}",
                     fontsize=9)
        ax.set_xlabel("block / iteration")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.suptitle(table.title, fontsize=9)
    save_figure(fig, str(path))
    return path


def _over_trials(outputs: Mapping[int, Any]) -> str:
    n = len(outputs)
    return "one trial" if n == 1 else f"mean ± SD over {n} trials"


def _ordering_findings(cells: dict, rows_keys: list, width: int) -> list[str]:
    """Whether test accuracy rises block by block (the paper: features grow more separable)."""
    out = []
    for label, pool in rows_keys:
        tests = [statistics.fmean(b for _, b in cells[(label, pool, i)])
                 for i in range(1, width + 1) if (label, pool, i) in cells]
        steady = all(b >= a for a, b in zip(tests, tests[1:])) and tests[-1] > tests[0]
        what = ("never falls from block to block and ends higher" if steady
                else "does not rise steadily block by block")
        out.append(f"{label} (pooling {pool}): test accuracy {what} "
                   f"({' -> '.join(f'{t:.1f}' for t in tests)}); the paper's rises")
    return out


def _cka_table(preset: AnalysisPreset, outputs: dict[int, list[Any]]) -> tuple[Table, list[str]]:
    """Rows: per pair, our CKA between the last layers (mean ± SD over trials) and the paper's."""
    values: dict[tuple[str, ...], list[float]] = {}
    what = ""
    for outs in outputs.values():
        for group, o in zip(preset.groups, outs):
            values.setdefault(tuple(group), []).append(o.result["last"])
            what = o.result["labels"][o.result["headline"]]
    paper = {tuple(p["pair"]): p for p in preset.paper}
    header = ["pair", "CKA, last layers (ours)", "paper"]
    rows, csv_rows = [], []
    for pair, vs in values.items():
        ref = paper.get(pair)
        rows.append([" vs ".join(pair), _fmt(vs, 3), "" if ref is None else f"{ref['value']:.3f}"])
        csv_rows.append([" vs ".join(pair), _stat(vs)[0], _stat(vs)[1],
                         None if ref is None else ref["value"]])
    findings = [f"values: {what}"]
    if len(values) >= 2:
        (p1, v1), (p2, v2) = list(values.items())[:2]
        m1, m2 = _stat(v1)[0], _stat(v2)[0]
        findings.append(f"{' vs '.join(p1)} ({m1:.3f}) is {'more' if m1 > m2 else 'not more'} "
                        f"similar than {' vs '.join(p2)} ({m2:.3f}); the paper: 0.843 > 0.819"
                        if paper else "")
    return Table(preset.name, preset.title, header, rows,
                 ["pair", "cka", "cka_sd", "paper"], csv_rows,
                 note=f"{what[:1].upper()}{what[1:]} between the last body layers (the features "
                      f"the classifier reads); ours: {_over_trials(outputs)}. Every layer pair: "
                      f"cka_*.csv / .png in each trial's folder."), [f for f in findings if f]


def _reuse_table(preset: AnalysisPreset, outputs: dict[int, list[Any]]
                 ) -> tuple[Table, list[str]]:
    """Rows: per model, the mean share of the most active iteration at each rank and the fraction
    of active image-filter pairs whose least active iteration keeps >= 20% of the activity."""
    means: dict[str, list[list[float]]] = {}
    shares: dict[str, list[float]] = {}
    ranks: list[int] = []
    for outs in outputs.values():
        for o in outs:
            for name, res in o.result["models"].items():
                ranks = res["ranks"]
                means.setdefault(name, []).append(res["mean_ratio"])
                shares.setdefault(name, []).append(_share_at_least(res, REUSE_THRESHOLD))
    header = ["model", *[f"rank {r}: mean ratio" for r in ranks],
              f"least active >= {REUSE_THRESHOLD:.0%} of most active"]
    rows = [[name, *[_fmt([m[i] for m in ms], 3) for i in range(len(ranks))],
             _fmt([100 * s for s in shares[name]]) + " %"] for name, ms in means.items()]
    csv_rows = [[name, *[v for i in range(len(ranks)) for v in _stat([m[i] for m in ms])],
                 *_stat(shares[name])] for name, ms in means.items()]
    notes = [p.get("claim", "") for p in preset.paper]
    findings = [f"{name}: {100 * _stat(v)[0]:.1f}% of active image-filter pairs keep at least "
                f"{REUSE_THRESHOLD:.0%} of their most active iteration's activity on the least "
                f"active one" for name, v in shares.items()] + [f"paper: {n}" for n in notes if n]
    return Table(preset.name, preset.title, header, rows,
                 ["model", *[c for r in ranks for c in (f"mean_ratio_rank{r}",
                                                        f"mean_ratio_rank{r}_sd")],
                  "share_least_active_ge_0.2", "share_least_active_ge_0.2_sd"], csv_rows,
                 note=f"Per image-filter pair, the positive activations at the k-th most active "
                      f"iteration divided by those at the most active one; {_over_trials(outputs)}."
                      f" Histograms: reuse.png / reuse.csv in each trial's folder."), findings


def _share_at_least(res: Mapping[str, Any], threshold: float) -> float:
    """Share of active pairs whose last rank's ratio is >= ``threshold`` (a bin edge)."""
    edges = res["bin_edges"]
    start = next((i for i, e in enumerate(edges) if math.isclose(e, threshold)), None)
    if start is None:
        raise ConfigError(f"reuse bins must have an edge at {threshold} (e.g. bins: 10)")
    counts = res["histogram"][-1]
    total = sum(counts)
    return sum(counts[start:]) / total if total else 0.0


def _featviz_table(preset: AnalysisPreset, outputs: dict[int, list[Any]]
                   ) -> tuple[Table, list[str]]:
    """Rows: per model and layer, the objective before and after optimisation (the paper shows
    images only; the figure is ``featviz.png`` in each trial's folder)."""
    rows, csv_rows, findings = [], [], []
    for t, outs in outputs.items():
        for o in outs:
            for name, layers in o.result["models"].items():
                rose = 0
                for v in layers:
                    start, end = v["start"]["objective"], v["end"]["objective"]
                    rose += end > start
                    rows.append([name, f"{v['layer']} (depth {v['effective_depth']})", str(t),
                                 f"{start:.3f}", f"{end:.3f}"])
                    csv_rows.append([name, v["layer"], v["effective_depth"], t, start, end])
                findings.append(f"trial {t}, {name}: the objective rose at {rose} of "
                                f"{len(layers)} layers; images in {o.out / 'featviz.png'}")
    return Table(preset.name, preset.title,
                 ["model", "layer", "trial", "objective before", "objective after"], rows,
                 ["model", "layer", "effective_depth", "trial", "objective_start",
                  "objective_end"], csv_rows,
                 note="The objective maximised (appendix A.6): λmain·main − λtv·TV − λbn·BN, "
                      "on the images without jitter, before and after the optimisation (higher "
                      "is better; negative where the penalties outweigh the activation). The "
                      "images: featviz.png in each trial's folder."), findings


def _featviz_figure(table: Table, outputs: Mapping[int, list[Any]], path: Path) -> Path:
    """The first trial's image grid (the figure of Figures 7-8) at the preset's top level."""
    from recurdepth.io import atomic_write

    first = outputs[min(outputs)][0].out / "featviz.png"
    return atomic_write(path, lambda p: p.write_bytes(first.read_bytes()))


FIGURES: dict[str, Callable[[Table, Mapping[int, list[Any]], Path], Path]] = {
    "probes": _plot_against_paper, "cka": _plot_cka, "reuse": _plot_reuse_pooled,
    "featviz": _featviz_figure}
TABLES: dict[str, Callable[[AnalysisPreset, dict[int, list[Any]]], tuple[Table, list[str]]]] = {
    "probes": _probes_table, "cka": _cka_table, "reuse": _reuse_table,
    "featviz": _featviz_table}

__all__ = ["PaperAnalysis", "run_analysis_preset"]
