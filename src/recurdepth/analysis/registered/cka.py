"""CKA similarity between the layers of two runs (§5.1)."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="cka", order=30, function="recurdepth.analysis.runs:analyze_cka",
    help="CKA similarity between the layers of two runs (heat map)",
    description="Linear CKA (biased and debiased) between the stem output and every "
    "iteration / block of RUN_DIR and RUN_DIR2 (default: RUN_DIR itself) on the test set.",
    second="the run to compare with (default: RUN_DIR itself)", batch_size=250,
    outputs=("cka.json", "cka_biased.csv", "cka_biased.png", "cka_debiased.csv",
             "cka_debiased.png"),
    examples=("recurdepth analyze cka runs/maze-recurrent-d12 runs/maze-feedforward-d12",),
    options=(
        Option("images", ("--images",), "first test images (default 1000, or the whole test "
               "set when smaller)", type=int),
        Option("method", ("--method",), "exact full-data CKA (the paper's, Kornblith et al. "
               "2019), debiased minibatch estimator (Nguyen et al. 2021; batches of "
               "--batch-size), or auto: exact when it fits in --max-gib, else minibatch "
               "(default)", choices=("auto", "exact", "minibatch"), default="auto"),
        Option("max_gib", ("--max-gib",), "memory budget of exact CKA in GiB (default 4)",
               type=float, default=4.0),
    )))
