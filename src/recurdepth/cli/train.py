"""``recurdepth train``: train one run from a YAML config plus ``section.key=value`` overrides."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from recurdepth.paths import folder_arg
from recurdepth.training.config import RunConfig, config_keys, load_config, resolve
from recurdepth.training.distributed import shutdown_distributed, world_rank
from recurdepth.training.launch import check_process_count, torchrun_command
from recurdepth.training.run import train_run

EXAMPLES = """examples:
  recurdepth train model.family=maze model.effective_depth=16 model.width=32 \\
      optim.name=adam optim.lr=0.001 train.epochs=20 data.root=data
  recurdepth train --config my_run.yaml seed=3 --run-dir runs/my_run_s3
  recurdepth train --nproc-per-node 4 --config my_run.yaml   # DDP on 4 GPUs (torchrun)

Running the same command again resumes the run from its last checkpoint."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one model on one data set (resumes an interrupted run)",
        description="Train one run with the authors' protocol and write a run folder "
        "(config.yaml, env.json, status.json, metrics.jsonl, checkpoint_last.pt, result.json). "
        "Config keys: " + ", ".join(config_keys()) + ".",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML config file (optional)")
    p.add_argument("--run-dir", type=folder_arg, metavar="DIR",
                   help="run folder (default: runs/<name>, name derived from the config)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit without training")
    p.add_argument("--nproc-per-node", type=int, default=None, metavar="N",
                   help="train with N processes (DDP, one per GPU; gloo on CPU) through torchrun "
                        "--standalone; the global batch stays train.batch_size")
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
    try:
        result = train_run(cfg, run_dir, progress=cfg.runtime.progress)
    finally:
        shutdown_distributed()
    if world_rank() != 0:
        return 0 if result.get("status") == "completed" else 1
    print(json.dumps({k: result.get(k) for k in ("status", "test_acc", "train_acc",
                                                 "test_acc_per_iter", "epochs", "seconds",
                                                 "images_per_s") if k in result}))
    print(f"run folder: {run_dir}")
    return 0 if result.get("status") == "completed" else 1
