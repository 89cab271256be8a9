"""``recurdepth eval``: accuracy of a trained run, per iteration for recurrent models."""

from __future__ import annotations

import argparse
import json

from recurdepth.errors import ConfigError



def parse_iters(text: str) -> int:
    """``"1..N"`` or ``"N"`` → N (accuracy is reported for every iteration count 1..N)."""
    last = text.split("..", 1)[1] if ".." in text else text
    first = text.split("..", 1)[0] if ".." in text else "1"
    try:
        lo, hi = int(first), int(last)
    except ValueError:
        raise ConfigError(f"--iters expects 1..N or N, got {text!r}") from None
    if lo != 1 or hi < 1:
        raise ConfigError(f"--iters expects 1..N with N >= 1 (every count from 1), got {text!r}")
    from recurdepth.training.config import MAX_ITERS

    if hi > MAX_ITERS:
        raise ConfigError(f"--iters: N must be <= {MAX_ITERS:,}, got {hi:,}")
    return hi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained run (test/train accuracy, per iteration, other maze sizes)",
        description="Evaluate the last checkpoint of a run folder without augmentation. For "
        "recurrent models, --iters 1..N reports the accuracy after every iteration count from 1 "
        "to N, where N may exceed the trained iterations (the 'think longer' curve). Every "
        "result is also saved in RUN_DIR/eval.json, keyed by split, maze size and iterations.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `recurdepth train`")
    p.add_argument("--iters", metavar="1..N", help="evaluate after every iteration count from 1 "
                   "to N (recurrent only; N alone means the same)")
    p.add_argument("--data", choices=("test", "train"), default="test",
                   help="split to evaluate (train: without augmentation); default test")
    p.add_argument("--data-root", metavar="DIR", help="data root (default: the run's data.root)")
    p.add_argument("--size", "--maze-size", dest="maze_size", type=int, metavar="S",
                   help="evaluate on examples of size S: mazes of S x S (e.g. 13), strings of "
                   "S bits (e.g. 128)")
    p.add_argument("--limit", type=int, metavar="N", help="first N samples only")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from recurdepth.training.run import evaluate_saved
    from recurdepth.training.tracking import record_eval

    iters = parse_iters(args.iters) if args.iters else None
    out = evaluate_saved(args.run_dir, iters=iters, split=args.data, maze_size=args.maze_size,
                         limit=args.limit, data_root=args.data_root, device=args.device)
    if args.limit is not None:
        out["samples_limit"] = args.limit
    saved = record_eval(args.run_dir, out)
    if args.format == "json":
        print(json.dumps(out, indent=2))
        return 0
    where = f"{out['data']}" + (f" size {out['maze_size']}" if "maze_size" in out else "")
    print(f"{out['run_dir']} (epoch {out['epoch']}), {args.data} split of {where}, "
          f"{out['samples']} samples")
    if "acc_per_iter" in out:
        print(f"{'iters':>5}  {'accuracy %':>10}")
        for i, acc in enumerate(out["acc_per_iter"], start=1):
            mark = "  (trained)" if i == out["trained_iters"] else ""
            print(f"{i:>5}  {acc:>10.2f}{mark}")
        if "note" in out:
            print(f"note: {out['note']}")
    else:
        print(f"accuracy: {out['acc']:.2f}%")
    print(f"saved in {saved}")
    return 0
