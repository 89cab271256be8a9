"""The analyses of trained run folders, each writing its numbers (JSON, CSV) and figure (PNG).

One function per analysis of ``recurdepth analyze``; the command only parses its flags and prints
:attr:`AnalysisOutput.summary`, so everything it does can be run from Python::

    from recurdepth.analysis.runs import analyze_cka
    out = analyze_cka("runs/ff-d9", "runs/rec-d9", images=1000)
    out.result["biased"], out.files

Outputs go to ``RUN_A/analysis/<analysis>`` (``.../<analysis>/<A>_vs_<B>`` for two runs, so
``cka A B`` and ``cka A C`` keep both) unless ``out`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError
from recurdepth.io import atomic_write_csv, atomic_write_json

PathLike = str | os.PathLike
DEFAULT_IMAGES = 1000  # the paper's reuse analysis uses 1,000 test images (§5)


@dataclass
class AnalysisOutput:
    """What an analysis wrote: its folder, files, numbers and a printable summary."""

    analysis: str
    out: Path
    files: list[Path] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


# -- shared steps -------------------------------------------------------------------------------

def load_analysable(run_dir: PathLike, analysis: str, *, device: str = "cpu",
                    data_root: PathLike | None = None) -> Any:
    """Load a trained run for ``analysis`` (one-line errors for folders it cannot read).

    The data it reads (the run's own, or under ``data_root``) must be the data the run was
    trained on (its recorded fingerprint), so an analysis never mixes data sets.
    """
    from recurdepth.analysis.features import check_analysable
    from recurdepth.data.fingerprint import check_run_data
    from recurdepth.training.run import load_run

    from recurdepth.analysis.registry import get_analysis

    check_analysable(run_dir, analysis)
    loaded = load_run(run_dir, device=device)
    get_analysis(analysis).check_mode(loaded.model.mode, run_dir)
    if data_root is not None:
        loaded.config.data.root = str(data_root)
    check_run_data(run_dir, loaded.config)
    return loaded


def _load_pair(run_a: PathLike, run_b: PathLike | None, analysis: str, *, device: str,
               data_root: PathLike | None, same_data: bool = True) -> list[Any]:
    from recurdepth.analysis.features import check_same_data

    runs = [load_analysable(run_a, analysis, device=device, data_root=data_root)]
    if run_b is not None:
        runs.append(load_analysable(run_b, analysis, device=device, data_root=data_root))
        if same_data:
            check_same_data(runs[0].config, runs[1].config, runs[0].run_dir, runs[1].run_dir)
    return runs


def output_folder(run_a: PathLike | None, analysis: str, run_b: PathLike | None = None,
                  out: PathLike | None = None) -> Path:
    """The folder an analysis writes to (created): ``out`` or the default under ``run_a``."""
    from recurdepth.analysis.features import analysis_dir

    if out is not None:
        folder = Path(out)
    elif run_a is None:
        folder = Path("analysis") / analysis
    else:
        folder = analysis_dir(run_a, analysis, run_b)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_label(loaded: Any) -> str:
    """A model's label in tables and figures: its mode and run folder name."""
    return f"{loaded.model.mode} ({Path(loaded.run_dir).name})"


def input_side(cfg: Any) -> int:
    """The input image side of a run's data (at the run's example size, e.g. a maze's)."""
    from recurdepth.data.registry import get_dataset

    side = get_dataset(cfg.data.name).image_side(cfg.example_size())
    if side is None:
        raise ConfigError(f"data set {cfg.data.name!r} has no fixed image size; give one "
                          f"(--image-size)")
    return side


def _labels(runs: list[Any], labels: list[str] | None) -> list[str]:
    if labels is None:
        return [run_label(lo) for lo in runs]
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise ConfigError(f"give {len(runs)} distinct labels, one per run, not {labels!r}")
    return list(labels)


def _written(out: Path, names: list[str]) -> list[Path]:
    return [out / name for name in names]


# -- activation reuse (Figure 6, 9-11) ------------------------------------------------------------

def analyze_reuse(run_dir: PathLike, control: PathLike | None = None, *,
                  images: int | None = None, k: int | None = None, bins: int = 10,
                  unit: str = "pair", untrained_control: bool = False, seed: int = 0,
                  batch_size: int = 100, labels: list[str] | None = None,
                  out: PathLike | None = None, device: str = "cpu",
                  data_root: PathLike | None = None, progress: bool = True) -> AnalysisOutput:
    """Activation reuse across iterations of ``run_dir`` (and ``control``) on random test images.

    ``images`` test images are drawn at random with ``seed`` (recorded); None takes the paper's
    1,000, or the whole test set when it is smaller.
    """
    import torch

    from recurdepth.analysis.features import analysis_data
    from recurdepth.analysis.reuse import (activation_counts, ordinal, plot_reuse,
                                           reuse_histogram)
    from recurdepth.training.run import make_model

    runs = _load_pair(run_dir, control, "reuse", device=device, data_root=data_root)
    inputs, _ = analysis_data(runs[0].config, "test", images, device=device, seed=seed,
                              default=DEFAULT_IMAGES)
    models = {name: lo.model for name, lo in zip(_labels(runs, labels), runs)}
    if untrained_control:
        torch.manual_seed(runs[0].config.seed)
        models[f"untrained {runs[0].model.mode}"] = make_model(runs[0].config).to(device).eval()
    results = {}
    lines = []
    for name, model in models.items():
        counts = activation_counts(model, inputs, batch_size=batch_size, device=device)
        res = results[name] = reuse_histogram(counts, k=k, bins=bins, unit=unit)
        lines.append(f"{name}: {res.active_pairs:,} active {unit}s, {res.never_active_filters} "
                     f"filters never active; mean share of the most active iteration's activity "
                     "at the " + ", ".join(f"{ordinal(r)} ({m:.3f})"
                                           for r, m in zip(res.ranks, res.mean_ratio))
                     + " most active")
    folder = output_folder(run_dir, "reuse", control, out)
    result = {"images": len(inputs), "image_seed": seed, "unit": unit,
              "models": {k_: v.to_dict() for k_, v in results.items()}}
    atomic_write_json(folder / "reuse.json", result)
    atomic_write_csv(folder / "reuse.csv", ["model", "rank", "ratio_from", "ratio_to", "count"],
                     [[name, rank, lo, hi, count]
                      for name, res in results.items()
                      for rank, hist in zip(res.ranks, res.histogram)
                      for lo, hi, count in zip(res.bin_edges[:-1], res.bin_edges[1:], hist)])
    plot_reuse(results, str(folder / "reuse.png"))
    return AnalysisOutput("reuse", folder, _written(folder, ["reuse.json", "reuse.csv",
                                                             "reuse.png"]),
                          result, "\n".join(lines))


# -- linear probes (Tables 3, 6, 7) ---------------------------------------------------------------

def parse_pools(values: list[str | int | None]) -> list[int | None]:
    """Pool sizes from ``none`` / positive integers (ConfigError otherwise)."""
    sizes: list[int | None] = []
    for v in values:
        if v is None or str(v).lower() == "none":
            sizes.append(None)
        elif str(v).isdigit() and int(v) > 0:
            sizes.append(int(v))
        else:
            raise ConfigError(f"pool takes 'none' or a positive size, not {v!r}")
    return sizes


def analyze_probes(run_dir: PathLike, run_dir2: PathLike | None = None, *,
                   pool: list[str | int | None] = (None,), train_images: int | None = None,
                   test_images: int | None = None, epochs: int = 20, lr: float = 0.01,
                   weight_decay: float | None = None, batch_size: int = 100,
                   labels: list[str] | None = None, out: PathLike | None = None,
                   device: str = "cpu",
                   data_root: PathLike | None = None, progress: bool = True) -> AnalysisOutput:
    """Linear probes on the frozen features after every block / iteration of one or two runs.

    ``pool``: adaptive average pooling sizes (None or "none": no pooling), one probe set per
    size, as ``--pool``;
    ``weight_decay`` None picks it per layer on a validation fifth of the training set.
    """
    from recurdepth.analysis.features import analysis_data
    from recurdepth.analysis.probes import probe_model, probe_table

    runs = _load_pair(run_dir, run_dir2, "probes", device=device, data_root=data_root)
    train = analysis_data(runs[0].config, "train", train_images, device=device,
                          flag="--train-images")
    test = analysis_data(runs[0].config, "test", test_images, device=device,
                         flag="--test-images")
    sizes = parse_pools([pool] if isinstance(pool, (str, int)) or pool is None else list(pool))
    results: dict[str, list] = {}
    for label, loaded in zip(_labels(runs, labels), runs):
        for pool in sizes:
            key = label + ("" if pool is None else f", pool {pool}x{pool}")
            results[key] = probe_model(loaded.model, train, test, pool=pool,
                                       batch_size=batch_size, epochs=epochs, lr=lr,
                                       weight_decay=weight_decay, device=device,
                                       progress=progress)
    task = "maze" if runs[0].config.task.per_pixel else "classification"
    folder = output_folder(run_dir, "probes", run_dir2, out)
    result = {"task": task, "train_images": len(train[0]), "test_images": len(test[0]),
              "epochs": epochs, "lr": lr, "pools": sizes,
              "weight_decay": "validated" if weight_decay is None else weight_decay,
              "models": {k: [r.to_dict() for r in v] for k, v in results.items()}}
    atomic_write_json(folder / "probes.json", result)
    atomic_write_csv(folder / "probes.csv",
                     ["model", "layer", "effective_depth", "features", "train_acc", "test_acc",
                      "train_pixel_acc", "test_pixel_acc"],
                     [[name, r.layer, r.effective_depth, r.features, r.train_acc, r.test_acc,
                       r.train_pixel_acc, r.test_pixel_acc]
                      for name, rs in results.items() for r in rs])
    _plot_probes(results, folder / "probes.png", task)
    lines = [f"train / test accuracy (%){' (mazes solved)' if task == 'maze' else ''}:",
             probe_table(results)]
    if task == "maze":
        lines += [f"{name} pixel accuracy train / test: " + "  ".join(
            f"{r.layer}: {r.train_pixel_acc:.1f} / {r.test_pixel_acc:.1f}" for r in rs)
            for name, rs in results.items()]
    return AnalysisOutput("probes", folder, _written(folder, ["probes.json", "probes.csv",
                                                              "probes.png"]),
                          result, "\n".join(lines))


def _plot_probes(results: dict[str, list], path: Path, task: str) -> None:
    from recurdepth.analysis.plots import plt, save_figure

    panels = [("train_acc", "test_acc", "mazes solved (%)" if task == "maze" else "accuracy (%)")]
    if task == "maze":
        panels.append(("train_pixel_acc", "test_pixel_acc", "open pixels correct (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (tr, te, ylabel) in zip(axes[0], panels):
        for i, (name, rs) in enumerate(results.items()):
            blocks = list(range(1, len(rs) + 1))
            ax.plot(blocks, [getattr(r, te) for r in rs], "o-", color=f"C{i}",
                    label=f"{name} test")
            ax.plot(blocks, [getattr(r, tr) for r in rs], "o--", color=f"C{i}", alpha=0.6,
                    label=f"{name} train")
            ax.set_xticks(blocks)
        ax.set_xlabel("block / iteration")
        ax.set_ylabel(ylabel)
        if tr == "train_acc":
            ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.suptitle("linear probes on frozen features", fontsize=10)
    save_figure(fig, str(path))


# -- CKA ------------------------------------------------------------------------------------------

def analyze_cka(run_dir: PathLike, run_dir2: PathLike | None = None, *,
                images: int | None = None, method: str = "auto", max_gib: float = 4.0,
                batch_size: int = 250, labels: list[str] | None = None,
                out: PathLike | None = None, device: str = "cpu",
                data_root: PathLike | None = None, progress: bool = True) -> AnalysisOutput:
    """Layer-by-layer linear CKA between two runs (``run_dir`` with itself when alone).

    ``images`` first test images (None: 1,000, or all when the test set is smaller).
    ``result["headline"]`` names the value to quote (exact biased CKA, the paper's, or the
    debiased minibatch estimate); ``result["last"]`` is that value between the last layers.
    """
    import numpy as np

    from recurdepth.analysis.cka import compare_models
    from recurdepth.analysis.features import analysis_data
    from recurdepth.analysis.plots import heatmap

    runs = _load_pair(run_dir, run_dir2, "cka", device=device, data_root=data_root)
    a, b = runs[0], runs[-1]
    inputs, _ = analysis_data(a.config, "test", images, device=device, default=DEFAULT_IMAGES)
    res = compare_models(a.model, b.model, inputs, method=method, batch_size=batch_size,
                         device=device, max_bytes=int(max_gib * 2**30), progress=progress)
    res.update(run_a=str(a.run_dir), run_b=str(b.run_dir),
               last=res[res["headline"]][-1][-1])
    folder = output_folder(run_dir, "cka", run_dir2, out)
    atomic_write_json(folder / "cka.json", res)
    label_a, label_b = _labels(runs, labels)[0], _labels(runs, labels)[-1]
    names = ["cka.json"]
    lines = []
    headline = res["headline"]
    for kind in (headline, "debiased" if headline == "biased" else "biased"):
        atomic_write_csv(folder / f"cka_{kind}.csv", ["layer", *res["layers_b"]],
                         [[name, *row] for name, row in zip(res["layers_a"], res[kind])])
        what = res["labels"][kind]
        heatmap(np.array(res[kind]), res["layers_a"], res["layers_b"],
                str(folder / f"cka_{kind}.png"), title=f"{what}\n{res['examples']} test images",
                xlabel=label_b, ylabel=label_a, colorbar="CKA")
        names += [f"cka_{kind}.csv", f"cka_{kind}.png"]
        lines.append(f"{what} ({label_a} rows, {label_b} columns):")
        lines.append("            " + " ".join(f"{n:>9}" for n in res["layers_b"]))
        lines += [f"{name:>10}  " + " ".join(f"{v:9.3f}" for v in row)
                  for name, row in zip(res["layers_a"], res[kind])]
    return AnalysisOutput("cka", folder, _written(folder, names), res, "\n".join(lines))


# -- feature visualisation (Figures 7, 8, 12, 13) -----------------------------------------------

def analyze_featviz(run_dir: PathLike, run_dir2: PathLike | None = None, *,
                    preset: str = "quick", steps: int | None = None,
                    filters: list[int] | None = None, layers: list[int] | None = None,
                    image_size: int | None = None, seed: int = 0,
                    labels: list[str] | None = None, out: PathLike | None = None,
                    device: str = "cpu", data_root: PathLike | None = None,
                    progress: bool = True) -> AnalysisOutput:
    """Activation maximisation of ``filters`` at the stem and every iteration / block of one or
    two runs, as an image grid like Figures 7-8 (appendix A.6 settings with ``preset='paper'``)."""
    from dataclasses import replace

    from recurdepth.analysis.featviz import layer_at, plot_grid, visualize_layers
    from recurdepth.analysis.featviz import preset as featviz_preset
    from recurdepth.data.registry import get_dataset

    if steps is not None and steps < 1:
        raise ConfigError(f"feature visualisation needs at least 1 step, got {steps}")
    if layers is not None and min(layers, default=0) < 0:
        raise ConfigError(f"layer indices start at 0 (the stem), got {min(layers)}")
    runs = _load_pair(run_dir, run_dir2, "featviz", device=device, data_root=data_root,
                      same_data=False)
    cfg0 = runs[0].config
    cfg = featviz_preset(preset, cfg0.data.name)
    cfg = replace(cfg, seed=seed, **({"steps": steps} if steps is not None else {}))
    info = get_dataset(cfg0.data.name)
    size = image_size or input_side(cfg0)
    filters = list(filters or range(4))
    names = _labels(runs, labels)
    columns = {name: visualize_layers(
        lo.model, cfg, filters=filters, layer_indices=layers, image_size=size, mean=info.mean,
        std=info.std, device=device, progress=progress) for name, lo in zip(names, runs)}
    folder = output_folder(run_dir, "featviz", run_dir2, out)
    depth = {name: {v.layer: layer_at(lo.model, i).effective_depth
                    for i, v in zip(layers or range(len(columns[name])), columns[name])}
             for name, lo in zip(names, runs)}
    plot_grid(columns, str(folder / "featviz.png"), show=len(filters),
              depth_of=lambda name, vis: depth[name][vis.layer])
    result = {"config": cfg.to_dict(), "image_size": size, "filters": filters,
              "models": {name: [{"layer": v.layer, "effective_depth": depth[name][v.layer],
                                 "weights": list(v.weights), "final": v.final,
                                 "start": v.start, "end": v.end} for v in vs]
                         for name, vs in columns.items()}}
    atomic_write_json(folder / "featviz.json", result)
    lines = [f"{name} {v['layer']}: objective {v['start']['objective']:.4g} -> "
             f"{v['end']['objective']:.4g}" for name, vs in result["models"].items() for v in vs
             if v["start"] and v["end"]]
    return AnalysisOutput("featviz", folder, _written(folder, ["featviz.json", "featviz.png"]),
                          result, "\n".join(lines))


# -- receptive field (§4.3) -----------------------------------------------------------------------

def analyze_receptive_field(run_dir: PathLike | None = None, *, family: str | None = None,
                            dataset: str | None = None, max_iters: int = 10,
                            dilations: list[int] | None = None, image_side: int | None = None,
                            out: PathLike | None = None) -> AnalysisOutput:
    """Analytic and measured receptive field for iterations 1..``max_iters`` of a run's family
    (or ``family``), for each dilation (default: 1 and the run's; 1 and 2 for dilatable
    maze families)."""
    from recurdepth.analysis.receptive_field import plot_receptive_field, receptive_field_table

    if max_iters < 1:
        raise ConfigError(f"--max-iters must be at least 1, got {max_iters}")
    if image_side is not None and image_side < 1:
        raise ConfigError(f"--image-side must be at least 1 pixel, got {image_side}")
    run_dilation = 1
    if run_dir is not None:
        from recurdepth.analysis.features import check_analysable
        from recurdepth.training.config import read_resolved
        from recurdepth.training.run import not_a_run_message

        config_file = Path(run_dir) / "config.yaml"
        if not config_file.exists():
            raise ConfigError(not_a_run_message(Path(run_dir)))
        check_analysable(run_dir, "rf")
        cfg = read_resolved(config_file)
        family, dataset = cfg.model.family, cfg.data.name
        run_dilation = int(cfg.model.options.get("dilation") or 1)
        if image_side is None and cfg.task.sized:
            image_side = input_side(cfg)
    elif family is None:
        raise ConfigError("give a RUN_DIR or --family")
    else:
        from recurdepth.models.registry import builder_options

        run_dilation = int(builder_options(family).get("dilation") or 1)
    if not dilations:
        # Dilated 3x3 convolutions, the paper's receptive-field control, where the family (or
        # a variant of it) takes a dilation: the maze solvers.
        dilations = [1, run_dilation if run_dilation != 1 else 2] if _dilatable(family) else [1]
    rows = receptive_field_table(family, list(range(1, max_iters + 1)), dataset=dataset,
                                 dilations=tuple(dict.fromkeys(dilations)), image_side=image_side)
    folder = output_folder(run_dir, "rf", None, out)
    atomic_write_json(folder / "rf.json", [r.to_dict() for r in rows])
    atomic_write_csv(folder / "rf.csv", list(rows[0].to_dict()),
                     [list(r.to_dict().values()) for r in rows])
    plot_receptive_field(rows, str(folder / "rf.png"))
    yes_no = {True: "yes", False: "no", None: "-"}
    lines = ["receptive field of the centre output pixel, in input pixels (measured on a canvas "
             "large enough to hold it; it may exceed the image, which it then covers)",
             "dilation  depth  iters  analytic  measured  image  covers image from centre / "
             "from any pixel"]
    lines += [f"{r.dilation:>8}  {r.effective_depth:>5}  {r.iters:>5}  {r.analytic:>8}  "
              f"{r.measured if r.measured is not None else '-':>8}  "
              f"{r.image_side if r.image_side is not None else '-':>5}  "
              f"{yes_no[r.covers_from_centre]} / {yes_no[r.covers_from_any_pixel]}" for r in rows]
    return AnalysisOutput("rf", folder, _written(folder, ["rf.json", "rf.csv", "rf.png"]),
                          {"rows": [r.to_dict() for r in rows]}, "\n".join(lines))


def _dilatable(family: str) -> bool:
    from recurdepth.models.registry import family_with_option

    try:
        family_with_option(family, "dilation")
    except ConfigError:
        return False
    return True


__all__ = ["AnalysisOutput", "DEFAULT_IMAGES", "analyze_cka", "analyze_featviz", "analyze_probes",
           "analyze_receptive_field", "analyze_reuse", "input_side", "load_analysable",
           "output_folder", "parse_pools", "run_label"]
