"""Receptive field per effective depth, with and without dilation (§4.3)."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="rf", order=50, function="recurdepth.analysis.runs:analyze_receptive_field",
    help="receptive field per effective depth, with and without dilation (§4.3)",
    description="Analytic and measured (input-gradient) receptive field of the output pixel "
    "for iterations 1..--max-iters of RUN_DIR's family (or --family).",
    runs="optional", run_help="a run folder (its family, dilation and maze size); "
    "optional with --family", batch_size=None, common=False, outputs=("rf.json", "rf.csv", "rf.png"),
    examples=("recurdepth analyze rf runs/maze-recurrent-d12 --max-iters 10",),
    options=(
        Option("family", ("--family",), "model family when no RUN_DIR is given"),
        Option("dataset", ("--dataset",), "data set when no RUN_DIR is given"),
        Option("max_iters", ("--max-iters",), "largest iteration count (default: "
               "%(default)s)", type=int, default=10),
        Option("dilations", ("--dilations",), "dilations to compare (maze families; default: "
               "1 and the run's, or 1 2)", type=int, nargs="+"),
        Option("image_side", ("--image-side",), "image side in pixels (default: from the "
               "run)", type=int),
    )))
