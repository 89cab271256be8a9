"""Linear probes on the features after every block / iteration (Tables 3, 6, 7)."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="probes", order=20, function="recurdepth.analysis.runs:analyze_probes",
    help="linear probes on the features after every block/iteration (Tables 3, 6, 7)",
    description="Train a linear classifier on the frozen features after each iteration / "
    "block (per pixel for maze solvers) and report train / test accuracy.",
    second="a second run for the same table (e.g. the feed-forward twin config)",
    outputs=("probes.json", "probes.csv", "probes.png"),
    examples=("recurdepth analyze probes runs/residual-recurrent-d19 "
              "runs/residual-feedforward-d19 --pool none 4",),
    options=(
        Option("pool", ("--pool",), "adaptive average pooling to SIZE x SIZE before the "
               "probe; 'none' for no pooling; several values run several probes (default: "
               "none)", nargs="+", default=["none"], metavar="SIZE"),
        Option("train_images", ("--train-images",), "training images (default: all of the "
               "run's)", type=int),
        Option("test_images", ("--test-images",), "test images (default: all of the run's)",
               type=int),
        Option("epochs", ("--epochs",), "probe training epochs (default 20)", type=int,
               default=20),
        Option("lr", ("--lr",), "Adam learning rate (default 0.01)", type=float, default=0.01),
        Option("weight_decay", ("--weight-decay",), "L2 weight decay of the probes (default: "
               "per layer, the best of 0, 1e-4, 1e-3, 1e-2 on a validation fifth of the "
               "training set)", type=float, metavar="WD"),
    )))
