"""``recurdepth analyze``: the paper's §5 analyses of trained runs, as numbers and figures.

Every analysis writes JSON (and CSV where the result is a table) plus a PNG into an analysis
folder, by default ``RUN_DIR/analysis/<analysis>``. The work is done by the library functions of
:mod:`recurdepth.analysis.runs`; this module only maps flags onto them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
        "RUN_DIR/analysis/<analysis>, or RUN_DIR/analysis/<analysis>/<RUN>_vs_<RUN2> for two "
        "runs). The same analyses run from Python: recurdepth.analysis.analyze_<analysis>. The "
        "paper's analysis results, with its numbers beside ours: `recurdepth reproduce --preset "
        "NAME` (see `recurdepth presets`).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyses = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    def common(q: argparse.ArgumentParser, *, second: str | None) -> None:
        q.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run folder")
        if second:
            q.add_argument("run_dir2", type=Path, nargs="?", metavar="RUN_DIR2", help=second)
        q.add_argument("--out", type=Path, metavar="DIR",
                       help="output folder (default: RUN_DIR/analysis/<analysis>, with "
                            "/<RUN>_vs_<RUN2> for two runs)")
        q.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        q.add_argument("--data-root", metavar="DIR", help="data folder (default: the run's)")
        q.add_argument("--batch-size", type=int, default=100,
                       help="images per forward pass (default: %(default)s)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")

    q = analyses.add_parser(
        "reuse", help="activation reuse across iterations (Figures 6, 9-11)",
        description="For every image-filter pair, positive activations of the body state at "
        "each iteration, divided by the most active iteration's; histogram of the 2nd ... kth "
        "most active. RUN_DIR2 (e.g. the feed-forward run of the same depth) is the control.")
    common(q, second="control run, e.g. the feed-forward model of the same effective depth")
    q.add_argument("--images", type=int, help="test images drawn at random (default 1000, or "
                   "the whole test set when smaller)")
    q.add_argument("-k", type=int, help="ranks 2..k (default: min(5, iters))")
    q.add_argument("--bins", type=int, default=10,
                   help="histogram bins over [0, 1] (default: %(default)s)")
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
    q.add_argument("--images", type=int, help="first test images (default 1000, or the whole "
                   "test set when smaller)")
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
                   help="layer indices: 0 = stem, i = iteration / block i; recurrent runs also "
                        "take iterations past the trained ones (default: stem and every trained "
                        "iteration / block)")
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
    q.add_argument("--max-iters", type=int, default=10,
                   help="largest iteration count (default: %(default)s)")
    q.add_argument("--dilations", type=int, nargs="+",
                   help="dilations to compare (maze families; default: 1 and the run's, or 1 2)")
    q.add_argument("--image-side", type=int, help="image side in pixels (default: from the run)")
    q.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: RUN_DIR/analysis/rf, or analysis/rf)")
    q.set_defaults(func=run_rf)


# -- analyses: flags -> library functions ---------------------------------------------------------

def _common(args: argparse.Namespace) -> dict:
    return {"out": args.out, "device": args.device, "data_root": args.data_root,
            "progress": not args.quiet}


def _finish(output) -> int:
    if output.summary:
        print(output.summary)
    for path in output.files:
        print(f"wrote {path}")
    return 0


def run_reuse(args: argparse.Namespace) -> int:
    from recurdepth.analysis.runs import analyze_reuse

    return _finish(analyze_reuse(
        args.run_dir, args.run_dir2, images=args.images, k=args.k, bins=args.bins,
        unit=args.unit, untrained_control=args.untrained_control, seed=args.seed,
        batch_size=args.batch_size, **_common(args)))


def run_probes(args: argparse.Namespace) -> int:
    from recurdepth.analysis.runs import analyze_probes

    return _finish(analyze_probes(
        args.run_dir, args.run_dir2, pool=args.pool, train_images=args.train_images,
        test_images=args.test_images, epochs=args.epochs, lr=args.lr,
        weight_decay=args.weight_decay, batch_size=args.batch_size, **_common(args)))


def run_cka(args: argparse.Namespace) -> int:
    from recurdepth.analysis.runs import analyze_cka

    return _finish(analyze_cka(
        args.run_dir, args.run_dir2, images=args.images, method=args.method,
        max_gib=args.max_gib, batch_size=args.batch_size, **_common(args)))


def run_featviz(args: argparse.Namespace) -> int:
    from recurdepth.analysis.runs import analyze_featviz

    return _finish(analyze_featviz(
        args.run_dir, args.run_dir2, preset=args.preset, steps=args.steps, filters=args.filters,
        layers=args.layers, image_size=args.image_size, seed=args.seed, **_common(args)))


def run_rf(args: argparse.Namespace) -> int:
    from recurdepth.analysis.runs import analyze_receptive_field

    return _finish(analyze_receptive_field(
        args.run_dir, family=args.family, dataset=args.dataset, max_iters=args.max_iters,
        dilations=args.dilations, image_side=args.image_side, out=args.out))


__all__ = ["ANALYSES", "register"]
