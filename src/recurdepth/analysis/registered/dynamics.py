"""Think-longer dynamics of a recurrent run past its trained iterations."""

from recurdepth.analysis.registry import Analysis, Option, register_analysis

register_analysis(Analysis(
    name="dynamics", order=60, function="recurdepth.analysis.dynamics:analyze_dynamics",
    help="what a recurrent run does when it thinks longer: accuracy, state norm and change, "
         "spectral radius, path independence, one-line classification",
    description="For iterations 1..MULT x the trained count, per test size: accuracy, state "
    "norm, relative change ||h_k - h_(k-1)|| / ||h_(k-1)||, the spectral radius of the unit's "
    "Jacobian at the trained count and at the end (power iteration on forward-mode "
    "Jacobian-vector products), path independence (restart from another input's state, noise, "
    "zeros; only for units that see the input at every iteration), recovery from noise on the "
    "state, and one line: converges / overthinks / diverges / limit cycle. Recurrent runs only.",
    runs="one", modes=("recurrent",),
    refuse="a feed-forward run has a fixed depth and cannot run past its trained iterations",
    outputs=("dynamics.json", "dynamics.csv", "dynamics.png"),
    examples=("recurdepth analyze dynamics runs/maze-recurrent-d16 --sizes 7 9 --mult 8",),
    options=(
        Option("sizes", ("--sizes",), "test example sizes (maze sizes; default: the run's)",
               type=int, nargs="+", metavar="SIZE"),
        Option("mult", ("--mult",), "iterations 1..MULT x the trained count (default: "
               "%(default)s)", type=int, default=8),
        Option("images", ("--images",), "test examples per size for the curves (default 500, "
               "or all when fewer)", type=int),
        Option("n", ("--n",), "of those, the first N for the spectral radius, the restarts and "
               "the perturbation (default: %(default)s)", type=int, default=100),
        Option("noise", ("--noise",), "relative size of the noise added to the state "
               "(default: %(default)s)", type=float, default=0.1),
        Option("perturb_at", ("--perturb-at",), "iteration whose state is perturbed (default: "
               "%(default)s)", type=int, default=1),
        Option("power_steps", ("--power-steps",), "power-iteration steps of the spectral radius "
               "(default: %(default)s)", type=int, default=50),
        Option("seed", ("--seed",), "seed of the noise and the power iteration (default 0)",
               type=int, default=0),
    )))
