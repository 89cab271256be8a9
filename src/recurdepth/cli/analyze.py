"""``recurdepth analyze``: the paper's §5 analyses of trained runs, as numbers and figures.

Every analysis writes JSON (and CSV where the result is a table) plus a PNG into an analysis
folder, by default ``RUN_DIR/analysis/<analysis>``.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

from recurdepth.errors import ConfigError
from recurdepth.io import atomic_write_json, atomic_write_text

ANALYSES = ("reuse", "probes", "cka", "featviz", "rf")

EXAMPLES = """examples:
  recurdepth analyze cka runs/maze-recurrent-d12 runs/maze-feedforward-d12
  recurdepth analyze reuse runs/convnet-recurrent-i5 --images 1000
  recurdepth analyze probes runs/residual-recurrent-d19 runs/residual-feedforward-d19 --pool none 4
  recurdepth analyze featviz runs/residual_bn-recurrent-d19 runs/residual_bn-feedforward-d19 --preset paper
  recurdepth analyze rf runs/maze-recurrent-d12 --max-iters 10"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="analyses of trained runs: reuse, probes, CKA, feature vis., receptive field",
        description="Analyses of the paper's §5 and appendix on trained run folders. Each writes "
        "JSON/CSV numbers and a PNG figure into an analysis folder (default "
        "RUN_DIR/analysis/<analysis>).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyses = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    def common(q: argparse.ArgumentParser, *, second: str | None) -> None:
        q.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run folder")
        if second:
            q.add_argument("run_dir2", type=Path, nargs="?", metavar="RUN_DIR2", help=second)
        q.add_argument("--out", type=Path, metavar="DIR",
                       help="output folder (default: RUN_DIR/analysis/<analysis>)")
        q.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        q.add_argument("--data-root", metavar="DIR", help="data folder (default: the run's)")
        q.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
        q.add_argument("--quiet", action="store_true", help="no progress bars")

    q = analyses.add_parser(
        "reuse", help="activation reuse across iterations (Figures 6, 9-11)",
        description="For every image-filter pair, positive activations of the body state at "
        "each iteration, divided by the most active iteration's; histogram of the 2nd ... kth "
        "most active. RUN_DIR2 (e.g. the feed-forward run of the same depth) is the control.")
    common(q, second="control run, e.g. the feed-forward model of the same effective depth")
    q.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    q.add_argument("-k", type=int, help="ranks 2..k (default: min(5, iters))")
    q.add_argument("--bins", type=int, default=10, help="histogram bins over [0, 1]")
    q.add_argument("--unit", choices=("pair", "filter"), default="pair",
                   help="normalise per image-filter pair (paper) or per filter over all images")
    q.add_argument("--untrained-control", action="store_true",
                   help="also analyse a freshly initialised model of RUN_DIR's config (Fig. 9)")
    q.add_argument("--seed", type=int, default=0,
                   help="seed of the random draw of --images test images (default 0)")
    q.set_defaults(func=run_reuse)

    q = analyses.add_parser(
        "probes", help="linear probes on the features after every block/iteration (Tables 3, 6, 7)",
        description="Train a linear classifier on the frozen features after each iteration / "
        "block (per pixel for maze solvers) and report train / test accuracy.")
    common(q, second="a second run for the same table (e.g. the feed-forward twin config)")
    q.add_argument("--pool", nargs="+", default=["none"], metavar="SIZE",
                   help="adaptive average pooling to SIZE x SIZE before the probe; 'none' for "
                   "no pooling; several values run several probes (default: none)")
    q.add_argument("--train-images", type=int, help="training images (default: all of the run's)")
    q.add_argument("--test-images", type=int, help="test images (default: all of the run's)")
    q.add_argument("--epochs", type=int, default=20, help="probe training epochs (default 20)")
    q.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    q.add_argument("--weight-decay", type=float, metavar="WD",
                   help="L2 weight decay of the probes (default: per layer, the best of 0, 1e-4, "
                   "1e-3, 1e-2 on a validation fifth of the training set)")
    q.set_defaults(func=run_probes)

    q = analyses.add_parser(
        "cka", help="CKA similarity between the layers of two runs (heat map)",
        description="Linear CKA (biased and debiased) between the stem output and every "
        "iteration / block of RUN_DIR and RUN_DIR2 (default: RUN_DIR itself) on the test set.")
    common(q, second="the run to compare with (default: RUN_DIR itself)")
    q.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    q.add_argument("--method", choices=("auto", "exact", "minibatch"), default="auto",
                   help="exact full-data CKA (the paper's, Kornblith et al. 2019), debiased "
                   "minibatch estimator (Nguyen et al. 2021; batches of --batch-size), or auto: "
                   "exact when it fits in --max-gib, else minibatch (default)")
    q.add_argument("--max-gib", type=float, default=4.0,
                   help="memory budget of exact CKA in GiB (default 4)")
    q.set_defaults(func=run_cka, batch_size=250)

    q = analyses.add_parser(
        "featviz", help="feature visualisation: recurrent iterations beside feed-forward layers",
        description="Activation maximisation (appendix A.6) of filters at the stem and every "
        "iteration / block; a grid of RUN_DIR beside RUN_DIR2 like Figures 7 and 8.")
    common(q, second="a second run shown beside the first (e.g. the feed-forward model)")
    q.add_argument("--preset", default="quick",
                   help="paper (1000 steps, the data set's A.6 setting), paper-cifar10, "
                   "paper-imagenet or quick (100 steps; default)")
    q.add_argument("--steps", type=int, help="optimisation steps (default: the preset's)")
    q.add_argument("--filters", type=int, nargs="+", help="filters to visualise (default: "
                   "the first 4)")
    q.add_argument("--layers", type=int, nargs="+",
                   help="layer indices: 0 = stem, i = iteration / block i (default: all)")
    q.add_argument("--image-size", type=int, help="image side (default: the data set's)")
    q.add_argument("--seed", type=int, default=0, help="seed of the initial images and jitter")
    q.set_defaults(func=run_featviz)

    q = analyses.add_parser(
        "rf", help="receptive field per effective depth, with and without dilation (§4.3)",
        description="Analytic and measured (input-gradient) receptive field of the output pixel "
        "for iterations 1..--max-iters of RUN_DIR's family (or --family).")
    q.add_argument("run_dir", type=Path, nargs="?", metavar="RUN_DIR",
                   help="a run folder (its family, dilation and maze size); optional with --family")
    q.add_argument("--family", help="model family when no RUN_DIR is given")
    q.add_argument("--dataset", help="data set when no RUN_DIR is given")
    q.add_argument("--max-iters", type=int, default=10, help="largest iteration count")
    q.add_argument("--dilations", type=int, nargs="+",
                   help="dilations to compare (maze families; default: 1 and the run's, or 1 2)")
    q.add_argument("--image-side", type=int, help="image side in pixels (default: from the run)")
    q.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: RUN_DIR/analysis/rf, or analysis/rf)")
    q.set_defaults(func=run_rf)


# -- shared helpers -----------------------------------------------------------------------------

def _load(run_dir: Path, args: argparse.Namespace) -> Any:
    from recurdepth.analysis.features import check_analysable
    from recurdepth.training.run import load_run

    check_analysable(run_dir, args.analysis)
    loaded = load_run(run_dir, device=args.device)
    if args.data_root:
        loaded.config.data.root = args.data_root
    return loaded


def _data(loaded: Any, split: str, limit: int | None, device: str, *,
          flag: str = "--images") -> tuple[Any, Any]:
    from recurdepth.analysis.features import analysis_data

    return analysis_data(loaded.config, split, limit, device=device, flag=flag)


def _same_data(a: Any, b: Any) -> None:
    from recurdepth.analysis.features import check_same_data

    check_same_data(a.config, b.config, a.run_dir, b.run_dir)


def _out_dir(args: argparse.Namespace) -> Path:
    from recurdepth.analysis.features import analysis_dir

    out = args.out or analysis_dir(args.run_dir, args.analysis, getattr(args, "run_dir2", None))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _label(loaded: Any) -> str:
    model = loaded.model
    return f"{model.mode} ({Path(loaded.run_dir).name})"


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _done(out: Path, files: list[str]) -> None:
    for name in files:
        print(f"wrote {out / name}")


# -- analyses ------------------------------------------------------------------------------------

def run_reuse(args: argparse.Namespace) -> int:
    import torch

    from recurdepth.analysis.reuse import activation_counts, ordinal, plot_reuse, reuse_histogram
    from recurdepth.training.run import make_model

    progress = not args.quiet
    from recurdepth.analysis.features import analysis_data

    main = _load(args.run_dir, args)
    inputs, _ = analysis_data(main.config, "test", args.images, device=args.device,
                              seed=args.seed)
    models = {_label(main): main.model}
    if args.run_dir2:
        control = _load(args.run_dir2, args)
        _same_data(main, control)
        models[_label(control)] = control.model
    if args.untrained_control:
        torch.manual_seed(main.config.seed)
        models[f"untrained {main.model.mode}"] = make_model(main.config).to(args.device).eval()
    results = {}
    for name, model in models.items():
        counts = activation_counts(model, inputs, batch_size=args.batch_size, device=args.device)
        results[name] = reuse_histogram(counts, k=args.k, bins=args.bins, unit=args.unit)
        if progress:
            print(f"{name}: {results[name].active_pairs:,} active {args.unit}s, "
                  f"{results[name].never_active_filters} filters never active")
    out = _out_dir(args)
    atomic_write_json(out / "reuse.json", {"images": len(inputs), "image_seed": args.seed,
                                           "models": {k: v.to_dict() for k, v in results.items()}})
    rows = [[name, rank, lo, hi, count]
            for name, res in results.items()
            for rank, hist in zip(res.ranks, res.histogram)
            for lo, hi, count in zip(res.bin_edges[:-1], res.bin_edges[1:], hist)]
    _write_csv(out / "reuse.csv", ["model", "rank", "ratio_from", "ratio_to", "count"], rows)
    plot_reuse(results, str(out / "reuse.png"))
    for name, res in results.items():
        print(f"{name}: mean ratio of the 2nd..{ordinal(res.ranks[-1])} most active iteration: "
              + ", ".join(f"{m:.3f}" for m in res.mean_ratio))
    _done(out, ["reuse.json", "reuse.csv", "reuse.png"])
    return 0


def _pool_sizes(values: list[str]) -> list[int | None]:
    sizes: list[int | None] = []
    for v in values:
        if v.lower() == "none":
            sizes.append(None)
        elif v.isdigit() and int(v) > 0:
            sizes.append(int(v))
        else:
            raise ConfigError(f"--pool takes 'none' or a positive size, not {v!r}")
    return sizes


def run_probes(args: argparse.Namespace) -> int:
    from recurdepth.analysis.probes import probe_model, probe_table

    runs = [_load(args.run_dir, args)]
    if args.run_dir2:
        runs.append(_load(args.run_dir2, args))
        _same_data(*runs)
    train = _data(runs[0], "train", args.train_images, args.device, flag="--train-images")
    test = _data(runs[0], "test", args.test_images, args.device, flag="--test-images")
    pools = _pool_sizes(args.pool)
    results: dict[str, list] = {}
    for loaded in runs:
        for pool in pools:
            key = _label(loaded) + ("" if pool is None else f", pool {pool}x{pool}")
            results[key] = probe_model(loaded.model, train, test, pool=pool,
                                       batch_size=args.batch_size, epochs=args.epochs,
                                       lr=args.lr, weight_decay=args.weight_decay,
                                       device=args.device, progress=not args.quiet)
    out = _out_dir(args)
    task = "maze" if runs[0].config.is_maze else "classification"
    atomic_write_json(out / "probes.json", {
        "task": task, "train_images": len(train[0]), "test_images": len(test[0]),
        "epochs": args.epochs, "lr": args.lr,
        "weight_decay": "validated" if args.weight_decay is None else args.weight_decay,
        "models": {k: [r.to_dict() for r in v] for k, v in results.items()}})
    rows = [[name, r.layer, r.effective_depth, r.features, r.train_acc, r.test_acc,
             r.train_pixel_acc, r.test_pixel_acc] for name, rs in results.items() for r in rs]
    _write_csv(out / "probes.csv", ["model", "layer", "effective_depth", "features",
                                    "train_acc", "test_acc", "train_pixel_acc",
                                    "test_pixel_acc"], rows)
    _plot_probes(results, out / "probes.png", task)
    print(f"train / test accuracy (%){' (mazes solved)' if task == 'maze' else ''}:")
    print(probe_table(results))
    if task == "maze":
        for name, rs in results.items():
            print(f"{name} pixel accuracy train / test: " + "  ".join(
                f"{r.layer}: {r.train_pixel_acc:.1f} / {r.test_pixel_acc:.1f}" for r in rs))
    _done(out, ["probes.json", "probes.csv", "probes.png"])
    return 0


def _plot_probes(results: dict[str, list], path: Path, task: str) -> None:
    from recurdepth.analysis.plots import plt, save_figure

    panels = [("train_acc", "test_acc", "mazes solved (%)" if task == "maze" else "accuracy (%)")]
    if task == "maze":
        panels.append(("train_pixel_acc", "test_pixel_acc", "open pixels correct (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (tr, te, ylabel) in zip(axes[0], panels):
        for i, (name, rs) in enumerate(results.items()):
            color = f"C{i}"
            blocks = list(range(1, len(rs) + 1))
            ax.plot(blocks, [getattr(r, te) for r in rs], "o-", color=color, label=f"{name} test")
            ax.plot(blocks, [getattr(r, tr) for r in rs], "o--", color=color, alpha=0.6,
                    label=f"{name} train")
        ax.set_xlabel("block / iteration")
        ax.set_xticks(blocks)
        ax.set_ylabel(ylabel)
        if tr == "train_acc":
            ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.suptitle("linear probes on frozen features", fontsize=10)
    save_figure(fig, str(path))


def run_cka(args: argparse.Namespace) -> int:
    import numpy as np

    from recurdepth.analysis.cka import compare_models
    from recurdepth.analysis.plots import heatmap

    a = _load(args.run_dir, args)
    b = _load(args.run_dir2, args) if args.run_dir2 else a
    _same_data(a, b)
    inputs, _ = _data(a, "test", args.images, args.device)
    res = compare_models(a.model, b.model, inputs, method=args.method,
                         batch_size=args.batch_size, device=args.device,
                         max_bytes=int(args.max_gib * 2**30), progress=not args.quiet)
    res.update(run_a=str(a.run_dir), run_b=str(b.run_dir))
    out = _out_dir(args)
    atomic_write_json(out / "cka.json", res)
    label_a, label_b = _label(a), _label(b)
    files = ["cka.json"]
    headline = res["headline"]
    for kind in (headline, "debiased" if headline == "biased" else "biased"):
        rows = [[name, *row] for name, row in zip(res["layers_a"], res[kind])]
        _write_csv(out / f"cka_{kind}.csv", ["layer", *res["layers_b"]], rows)
        what = res["labels"][kind]
        heatmap(np.array(res[kind]), res["layers_a"], res["layers_b"], str(out / f"cka_{kind}.png"),
                title=f"{what}\n{res['examples']} test images",
                xlabel=label_b, ylabel=label_a, colorbar="CKA")
        files += [f"cka_{kind}.csv", f"cka_{kind}.png"]
        print(f"{what} ({label_a} rows, {label_b} columns):")
        print("            " + " ".join(f"{n:>9}" for n in res["layers_b"]))
        for name, row in zip(res["layers_a"], res[kind]):
            print(f"{name:>10}  " + " ".join(f"{v:9.3f}" for v in row))
    _done(out, files)
    return 0


def run_featviz(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from recurdepth.analysis.featviz import plot_grid, preset, visualize_layers
    from recurdepth.analysis.features import layers

    runs = [_load(args.run_dir, args)]
    if args.run_dir2:
        runs.append(_load(args.run_dir2, args))
    cfg0 = runs[0].config
    cfg = preset(args.preset, cfg0.data.name)
    cfg = replace(cfg, seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    from recurdepth.data.registry import get_dataset

    info = get_dataset(cfg0.data.name)
    mean, std = info.mean, info.std
    size = args.image_size or _image_side(cfg0)
    filters = args.filters or list(range(4))
    columns = {}
    for loaded in runs:
        columns[_label(loaded)] = visualize_layers(
            loaded.model, cfg, filters=filters, layer_indices=args.layers, image_size=size,
            mean=mean, std=std, device=args.device, progress=not args.quiet)
    out = _out_dir(args)
    depth = {_label(lo): {layer.name: layer.effective_depth for layer in layers(lo.model)}
             for lo in runs}
    plot_grid(columns, str(out / "featviz.png"), show=len(filters),
              depth_of=lambda name, vis: depth[name][vis.layer])
    atomic_write_json(out / "featviz.json", {
        "config": cfg.to_dict(), "image_size": size, "filters": filters,
        "models": {name: [{"layer": v.layer, "weights": list(v.weights), "final": v.final}
                          for v in vs] for name, vs in columns.items()}})
    _done(out, ["featviz.json", "featviz.png"])
    return 0


def _image_side(cfg: Any) -> int:
    from recurdepth.data.registry import get_dataset

    if cfg.is_maze:
        return 2 * (cfg.data.maze_size + 2) + 2  # SPEC §2: rendering of a maze of size s
    size = get_dataset(cfg.data.name).image_size
    if size is None:
        raise ConfigError("give --image-size")
    return size


def run_rf(args: argparse.Namespace) -> int:
    from recurdepth.analysis.receptive_field import plot_receptive_field, receptive_field_table

    if args.run_dir is not None:
        from recurdepth.training.config import read_resolved

        config_file = Path(args.run_dir) / "config.yaml"
        if not config_file.exists():
            raise ConfigError(f"{args.run_dir} is not a run folder (no config.yaml)")
        cfg = read_resolved(config_file)
        family, dataset = cfg.model.family, cfg.data.name
        run_dilation = cfg.model.options.get("dilation") or cfg.model.dilation or 1
        side = args.image_side or (_image_side(cfg) if cfg.is_maze else None)
    elif args.family:
        family, dataset, side = args.family, args.dataset, args.image_side
        run_dilation = 2 if family == "maze_dilated" else 1
    else:
        raise ConfigError("give a RUN_DIR or --family")
    maze = family in ("maze", "maze_dilated")
    if args.dilations:
        dilations = tuple(args.dilations)
    elif maze:
        dilations = (1, run_dilation) if run_dilation != 1 else (1, 2)
    else:
        dilations = (1,)
    rows = receptive_field_table(family, list(range(1, args.max_iters + 1)), dataset=dataset,
                                 dilations=tuple(dict.fromkeys(dilations)), image_side=side)
    out = args.out or (Path(args.run_dir) / "analysis" / "rf" if args.run_dir
                       else Path("analysis") / "rf")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rf.json", [r.to_dict() for r in rows])
    header = list(rows[0].to_dict())
    _write_csv(out / "rf.csv", header, [list(r.to_dict().values()) for r in rows])
    plot_receptive_field(rows, str(out / "rf.png"))
    print("dilation  depth  iters  analytic  measured")
    for r in rows:
        print(f"{r.dilation:>8}  {r.effective_depth:>5}  {r.iters:>5}  {r.analytic:>8}  "
              f"{r.measured:>8}")
    _done(out, ["rf.json", "rf.csv", "rf.png"])
    return 0


__all__ = ["ANALYSES", "register"]
