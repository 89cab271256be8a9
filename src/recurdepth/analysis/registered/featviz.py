"""Feature visualisation: recurrent iterations beside feed-forward layers (Figures 7, 8)."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="featviz", order=40, function="recurdepth.analysis.runs:analyze_featviz",
    help="feature visualisation: recurrent iterations beside feed-forward layers",
    description="Activation maximisation (appendix A.6) of filters at the stem and every "
    "iteration / block; a grid of RUN_DIR beside RUN_DIR2 like Figures 7 and 8.",
    second="a second run shown beside the first (e.g. the feed-forward model)",
    batch_size=None, outputs=("featviz.json", "featviz.png"),
    examples=("recurdepth analyze featviz runs/residual_bn-recurrent-d19 "
              "runs/residual_bn-feedforward-d19 --preset paper",),
    options=(
        Option("preset", ("--preset",), "paper (1000 steps, the data set's A.6 setting), "
               "paper-cifar10, paper-imagenet or quick (100 steps; default)", default="quick"),
        Option("steps", ("--steps",), "optimisation steps (default: the preset's)", type=int),
        Option("filters", ("--filters",), "filters to visualise (default: the first 4)",
               type=int, nargs="+"),
        Option("layers", ("--layers",), "layer indices: 0 = stem, i = iteration / block i; "
               "recurrent runs also take iterations past the trained ones (default: stem and "
               "every trained iteration / block)", type=int, nargs="+"),
        Option("image_size", ("--image-size",), "image side (default: the data set's)",
               type=int),
        Option("seed", ("--seed",), "seed of the initial images and jitter", type=int,
               default=0),
    )))
