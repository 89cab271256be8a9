"""``recurdepth train``: train one run from a YAML config plus ``section.key=value`` overrides."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from recurdepth.paths import folder_arg
from recurdepth.data.registry import options_help
from recurdepth.training.config import RunConfig, config_keys, is_multirun, load_config, resolve
from recurdepth.training.distributed import shutdown_distributed, world_rank
from recurdepth.training.launch import check_process_count, torchrun_command

EXAMPLES = """examples:
  recurdepth train model.family=maze model.effective_depth=16 model.width=32 \\
      optim.name=adam optim.lr=0.001 train.epochs=20 data.root=data
  recurdepth train --config my_run.yaml seed=3 --run-dir runs/my_run_s3
  recurdepth train --config my_run.yaml seed=0,1,2 model.effective_depth=8,12   # 6 runs
  recurdepth train --nproc-per-node 4 --config my_run.yaml   # DDP on 4 GPUs (torchrun)

Running the same command again resumes the run from its last checkpoint. KEY=V1,V2,... runs
every combination of such values as a sweep (an experiment folder with a results database,
--run-dir or runs/multirun-<hash>); overrides may come before or after the options."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one model on one data set (resumes an interrupted run)",
        description="Train one run with the authors' protocol and write a run folder "
        "(config.yaml, env.json, status.json, metrics.jsonl, checkpoint_last.pt, result.json). "
        "Config keys: " + ", ".join(config_keys()) + ". " + options_help(),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file (optional)")
    p.add_argument("--run-dir", type=folder_arg, metavar="DIR",
                   help="run folder (default: runs/<name>, name derived from the config)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (with KEY=V1,V2: the runs) and exit")
    p.add_argument("--nproc-per-node", type=int, default=None, metavar="N",
                   help="train with N processes (DDP, one per GPU; gloo on CPU) through torchrun "
                        "--standalone; the global batch stays train.batch_size")
    p.add_argument("--quiet", action="store_true",
                   help="print nothing but the result (no per-epoch lines, no progress bars)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. optim.lr=0.05 model.effective_depth=20")
    p.set_defaults(func=run)


def _launch(args: argparse.Namespace, resolved: RunConfig, run_dir: Path) -> int:
    """Check the process count, then run this command under torchrun with N processes."""
    import subprocess

    check_process_count(args.nproc_per_node, resolved)
    argv = (["--config", str(args.config)] if args.config else []) + ["--run-dir", str(run_dir)]
    return subprocess.call(torchrun_command(args.nproc_per_node, argv + list(args.overrides)))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if any(is_multirun(o) for o in args.overrides):
        return run_multirun(args)
    cfg = load_config(args.config, args.overrides)
    resolved = resolve(cfg)
    if args.print_config:
        print(resolved.to_yaml(), end="")
        return 0
    run_dir = args.run_dir or Path("runs") / resolved.name
    if args.nproc_per_node is not None:
        return _launch(args, resolved, run_dir)
    # `kill` (SIGTERM) then marks the run folder "interrupted" like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    from recurdepth.training.run import train_run

    try:
        result = train_run(cfg, run_dir, progress=cfg.runtime.progress, quiet=args.quiet)
    finally:
        shutdown_distributed()
    if world_rank() != 0:
        return 0 if result.get("status") == "completed" else 1
    print(json.dumps({k: result.get(k) for k in ("status", "test_acc", "train_acc",
                                                 "test_acc_per_iter", "epochs", "seconds",
                                                 "images_per_s") if k in result}))
    print(f"run folder: {run_dir}")
    return 0 if result.get("status") == "completed" else 1


def run_multirun(args: argparse.Namespace) -> int:
    """``key=v1,v2 ...``: every combination as one sweep, through the sweep machinery."""
    from recurdepth.cli.sweep import dry_run
    from recurdepth.experiments.executors import make_executor
    from recurdepth.experiments.spec import Experiment, short_hash
    from recurdepth.experiments.sweep import run_sweep

    single = [o for o in args.overrides if not is_multirun(o)]
    multi = [o for o in args.overrides if is_multirun(o)]
    base = load_config(args.config, single).to_dict()
    base.pop("name", None)
    name = "multirun-" + short_hash({"base": base, "multi": multi}, 8)
    experiment = Experiment(name=name, base=base, grid=[]).with_overrides(multi)
    experiment = Experiment(**{**experiment.__dict__, "name": name})
    out = args.run_dir or Path("runs") / name
    if args.print_config:
        return dry_run(experiment, experiment.runs(), out)
    progress = bool(base["runtime"]["progress"]) and not args.quiet
    signal.signal(signal.SIGTERM, _interrupt)
    summary = run_sweep(experiment, out, executor=make_executor("local", progress=progress),
                        progress=not args.quiet)
    done = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing to run"
    print(f"{name}: {summary.total} runs, {summary.skipped} already finished, {summary.ran} run "
          f"now ({done}); database {summary.db_path}")
    for run_name, error in summary.failures:
        print(f"  failed: {run_name}: {error.splitlines()[0]}")
    print(f"experiment folder: {out} (`recurdepth report {out}` for plots and tables)")
    return 1 if summary.failures else 0
