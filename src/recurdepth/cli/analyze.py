"""``recurdepth analyze``: analyses of trained runs, as numbers and figures.

Every analysis writes JSON (and CSV where the result is a table) plus a PNG into an analysis
folder, by default ``RUN_DIR/analysis/<analysis>``. The analyses, their flags and the functions
that do the work come from the registry (:mod:`recurdepth.analysis.registry`); this module only
turns its declarations into sub-commands and maps flags onto the functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recurdepth.analysis.registry import Analysis, analyses, get_analysis


def register(sub: argparse._SubParsersAction) -> None:
    all_ = analyses()
    p = sub.add_parser(
        "analyze", help="analyses of trained runs: " + ", ".join(a.name for a in all_),
        description="Analyses of the paper's §5 and appendix, and of what a recurrent run does "
        "when it thinks longer (dynamics), on trained run folders. Each writes "
        "JSON/CSV numbers and a PNG figure into an analysis folder (default "
        "RUN_DIR/analysis/<analysis>, or RUN_DIR/analysis/<analysis>/<RUN>_vs_<RUN2> for two "
        "runs). The same analyses run from Python: recurdepth.analysis.analyze_<analysis>. The "
        "paper's analysis results, with its numbers beside ours: `recurdepth reproduce --preset "
        "NAME` (see `recurdepth presets`).",
        epilog="examples:\n" + "\n".join(f"  {e}" for a in all_ for e in a.examples),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    for a in all_:
        _add(subs, a)


def _add(subs: argparse._SubParsersAction, a: Analysis) -> None:
    q = subs.add_parser(a.name, help=a.help, description=a.description)
    if a.runs == "optional":
        q.add_argument("run_dir", type=Path, nargs="?", metavar="RUN_DIR", help=a.run_help)
    else:
        q.add_argument("run_dir", type=Path, metavar="RUN_DIR", help=a.run_help)
    if a.runs == "one-or-two":
        q.add_argument("run_dir2", type=Path, nargs="?", metavar="RUN_DIR2", help=a.second)
    if a.common:
        q.add_argument("--out", type=Path, metavar="DIR",
                       help="output folder (default: RUN_DIR/analysis/<analysis>, with "
                            "/<RUN>_vs_<RUN2> for two runs)")
        q.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        q.add_argument("--data-root", metavar="DIR", help="data folder (default: the run's)")
    if a.batch_size is not None:
        q.add_argument("--batch-size", type=int, default=a.batch_size,
                       help="images per forward pass (default: %(default)s)")
    if a.common:
        q.add_argument("--quiet", action="store_true", help="no progress bars")
    for option in a.options:
        option.add_to(q)
    if not a.common:
        q.add_argument("--out", type=Path, metavar="DIR",
                       help=f"output folder (default: RUN_DIR/analysis/{a.name}, or "
                            f"analysis/{a.name})")
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the analysis the parsed ``args`` name and print its summary and files."""
    a = get_analysis(args.analysis)
    kwargs = {o.name: getattr(args, o.name) for o in a.options}
    kwargs["out"] = args.out
    if a.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if a.common:
        kwargs.update(device=args.device, data_root=args.data_root, progress=not args.quiet)
    positional = [args.run_dir] + ([args.run_dir2] if a.runs == "one-or-two" else [])
    output = a.load()(*positional, **kwargs)
    if output.summary:
        print(output.summary)
    for path in output.files:
        print(f"wrote {path}")
    return 0


__all__ = ["register", "run"]
