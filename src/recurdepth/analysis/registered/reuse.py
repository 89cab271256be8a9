"""Activation reuse across iterations (paper §5, Figures 6, 9-11)."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="reuse", order=10, function="recurdepth.analysis.runs:analyze_reuse",
    help="activation reuse across iterations (Figures 6, 9-11)",
    description="For every image-filter pair, positive activations of the body state at each "
    "iteration, divided by the most active iteration's; histogram of the 2nd ... kth most "
    "active. RUN_DIR2 (e.g. the feed-forward run of the same depth) is the control.",
    second="control run, e.g. the feed-forward model of the same effective depth",
    outputs=("reuse.json", "reuse.csv", "reuse.png"),
    examples=("recurdepth analyze reuse runs/convnet-recurrent-i5 --images 1000",),
    options=(
        Option("images", ("--images",), "test images drawn at random (default 1000, or the "
               "whole test set when smaller)", type=int),
        Option("k", ("-k",), "ranks 2..k (default: min(5, iters))", type=int),
        Option("bins", ("--bins",), "histogram bins over [0, 1] (default: %(default)s)",
               type=int, default=10),
        Option("unit", ("--unit",), "normalise per image-filter pair (paper) or per filter "
               "over all images", choices=("pair", "filter"), default="pair"),
        Option("untrained_control", ("--untrained-control",), "also analyse a freshly "
               "initialised model of RUN_DIR's config (Fig. 9)", flag_only=True),
        Option("seed", ("--seed",), "seed of the random draw of --images test images "
               "(default 0)", type=int, default=0),
    )))
