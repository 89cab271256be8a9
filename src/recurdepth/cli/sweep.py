"""``recurdepth sweep``: run every run of an experiment (local, Ray or SLURM) into its results database."""

from __future__ import annotations

import argparse
from pathlib import Path

from recurdepth.experiments.executors import EXECUTORS, Executor, make_executor
from recurdepth.experiments.spec import Experiment, RunSpec, list_presets, load_experiment
from recurdepth.experiments.store import ResultStore
from recurdepth.experiments.sweep import db_path_for, default_out_dir, on_other_data, run_sweep
from recurdepth.paths import folder_arg


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def add_experiment_options(p: argparse.ArgumentParser, *, out_default: str = "runs/<experiment>",
                           data_default: str = "the experiment's data.root") -> None:
    """Options shared by ``sweep`` and ``reproduce``: output, data root, executor."""
    p.add_argument("--out", type=folder_arg, default=None,
                   help=f"output folder: results.sqlite, runs/, report/ (default: {out_default})")
    p.add_argument("--data-root", default=None,
                   help=f"folder of the data sets (default: {data_default})")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this machine; ray: one Ray task per run; slurm: one SLURM "
                        "job-array task per run, through submitit (default: local)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (e.g. auto or ray://head:10001); default: start a "
                        "local Ray")
    p.add_argument("--max-parallel", type=positive_int, default=None, metavar="N",
                   help="runs at once (local: worker processes sharing the CPU cores; default 1 "
                        "on a CPU, every place of --runs-per-gpu on a GPU machine; ray: tasks in "
                        "flight, default all)")
    p.add_argument("--num-cpus", type=float, default=1.0,
                   help="CPUs per Ray task (default 1)")
    p.add_argument("--num-gpus", type=float, default=0.0,
                   help="GPUs per Ray task (default 0; use 1 on a GPU cluster)")
    p.add_argument("--gpus-per-run", type=int, default=None, metavar="N",
                   help="GPUs per run; N > 1 trains each run with N DDP processes (torchrun). "
                        "local: at most (GPUs / N) runs at once, each on its own GPUs "
                        "(default 1 on a GPU machine); ray and slurm: requested per task")
    p.add_argument("--runs-per-gpu", type=positive_int, default=None, metavar="K",
                   help="runs sharing each GPU at once (local: K worker processes pinned to each "
                        "GPU; ray: num_gpus 1/K per task). Default on a GPU machine: as many as "
                        "the GPU's memory (the runs' estimate) and the CPU cores allow, printed "
                        "at the start; small models leave a GPU mostly idle alone")
    slurm = p.add_argument_group("SLURM (--executor slurm)")
    slurm.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--time", default=None, metavar="HH:MM:SS",
                       help="time limit per run; a run that reaches it is requeued and resumes "
                            "(default 24:00:00)")
    slurm.add_argument("--array-parallelism", type=int, default=None, metavar="K",
                       help="array tasks running at once (default: SLURM's limit)")
    slurm.add_argument("--slurm-cluster", choices=("slurm", "local"), default=None,
                       help="local: run the job array as local processes through submitit "
                            "(no sbatch; for trying a submission out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run an experiment's grid of runs into a results database",
        description="Expand an experiment (a preset name or a YAML file) into runs and train each "
        "with the same function as `recurdepth train`, recording every run in "
        "<out>/results.sqlite. Rerunning skips finished runs and resumes interrupted ones; a "
        "failed run is recorded with its error and the others go on. "
        f"Presets: {', '.join(list_presets())} (`recurdepth presets` describes them). "
        "With overrides or --trials the experiment is named <name>-o<hash> (its own database).",
        epilog="examples:\n  recurdepth sweep quick train.epochs=1 --trials 1\n"
               "  recurdepth sweep fig5_mazes_small optim.lr=0.05,0.1 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="preset name or experiment YAML file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="run-config overrides applied to every run (they win over the grid and "
                        "the rules), e.g. train.epochs=1; KEY=V1,V2 makes KEY a grid axis")
    p.add_argument("--trials", type=int, default=None, metavar="N",
                   help="trials per grid point (seeds base seed + 0 .. N-1; default: the "
                        "experiment's)")
    add_experiment_options(p)
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs with their parameter counts and status; run nothing")
    p.add_argument("--report", action="store_true",
                   help="write the report (plots, tables, index) when the sweep ends")
    p.set_defaults(func=run)


def format_rows(rows: list[dict], columns: tuple[str, ...]) -> str:
    """Render rows as an aligned text table (numbers right-aligned, thousands separators)."""
    def cell(v: object) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)

    cells = [[cell(r[c]) for c in columns] for r in rows]
    header = [c.replace("_", " ") for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    numeric = [all(isinstance(r[c], int) or r[c] is None for r in rows) for c in columns]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(vals, widths, numeric)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in cells])


def load_for_cli(args: argparse.Namespace) -> tuple[Experiment, Path]:
    """The experiment (with --data-root applied) and its output folder."""
    experiment = load_experiment(args.experiment)
    overrides = getattr(args, "overrides", None) or []
    trials = getattr(args, "trials", None)
    if overrides or trials is not None:
        experiment = experiment.with_overrides(overrides, trials=trials)
    if args.data_root is not None:
        experiment = experiment.with_data_root(Path(args.data_root).resolve())
    out = args.out if args.out is not None else default_out_dir(experiment)
    return experiment, out


def dry_run(experiment: Experiment, runs: list[RunSpec], out: Path) -> int:
    """Print the runs with parameter counts and their status in an existing database."""
    status: dict[str, str] = {}
    db = db_path_for(out)
    if db.exists():
        with ResultStore.open_existing(db) as store:
            store.check_identity(experiment, runs)
            records = {r.id: r for r in store.records()}
        status = {i: r.status for i, r in records.items()}
        # A finished run on other data is not finished for this data (the sweep refuses it).
        status.update({i: "other data" for i in on_other_data(runs, records)})
    rows = [{"run": r.name, "id": r.run_id, "mode": r.config.model.mode,
             "effective_depth": r.effective_depth, "iters": r.iters,
             "width": r.config.model.width, "parameters": r.parameters,
             "status": status.get(r.run_id, "new")} for r in runs]
    print(format_rows(rows, ("run", "id", "mode", "effective_depth", "iters", "width",
                             "parameters", "status")))
    print(f"\n{experiment.name}: {len(runs)} runs ({experiment.trials} trial(s) each); "
          f"database {db}")
    return 0


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor the command line asks for (bad options refused before anything runs)."""
    slurm = {"partition": args.partition, "time_limit": args.time,
             "array_parallelism": args.array_parallelism, "cluster": args.slurm_cluster}
    return make_executor(args.executor, max_parallel=args.max_parallel, address=args.address,
                         num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                         progress=not args.no_progress, gpus_per_run=args.gpus_per_run,
                         slurm=slurm, runs_per_gpu=args.runs_per_gpu)


def run(args: argparse.Namespace) -> int:
    experiment, out = load_for_cli(args)
    if args.dry_run:
        code = dry_run(experiment, experiment.runs(), out)
        if args.executor == "slurm":
            executor = executor_from_args(args)
            print("\nsubmission (one job-array task per run; finished runs are not submitted):")
            print(executor.describe(len(experiment.runs())))
        return code
    executor = executor_from_args(args)
    if hasattr(executor, "check_submittable"):
        executor.check_submittable()
    summary = run_sweep(experiment, out, executor=executor, progress=not args.no_progress)
    done = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing to run"
    print(f"{experiment.name}: {summary.total} runs, {summary.skipped} already finished, "
          f"{summary.ran} run now ({done}); database {summary.db_path}")
    if summary.placement:
        print(f"placement: {summary.placement}")
    for name, error in summary.failures:
        print(f"  failed: {name}: {error.splitlines()[0]}")
    if args.report:
        from recurdepth.report import write_report

        files = write_report(summary.db_path)
        print(f"report: {files.index}")
    return 1 if summary.failures else 0
