"""``recurdepth report``: plots, tables and an index page from an experiment's results database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recurdepth.paths import folder_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the plots, tables and index page of an experiment's results",
        description="Read a results database (a results.sqlite file, a sweep output folder, or "
        "an experiment name/YAML whose sweep used the default --out) and write the paper's "
        "figures (accuracy vs effective depth, recurrent and feed-forward side by side, mean ± "
        "standard error; accuracy vs test-time iterations), Markdown and CSV tables with "
        "parameter counts, learning curves, the computed verdict on the paper's claim (also printed "
        "here), and index.md / index.html (figures embedded, plus PNG and SVG files). Evaluations "
        "saved by `recurdepth eval` in the runs' eval.json are shown too (more test-time "
        "iterations, other maze sizes). Same database and run folders, same files.",
    )
    p.add_argument("target", metavar="EXPERIMENT_OR_DB",
                   help="results.sqlite, a sweep output folder, or a preset name / YAML file")
    p.add_argument("--out", type=folder_arg, default=None,
                   help="the sweep's output folder when EXPERIMENT_OR_DB is an experiment")
    p.add_argument("--report-dir", type=Path, default=None,
                   help="where to write the report (default: report/ next to the database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from recurdepth.report import report

    files = report(args.target, args.report_dir, out=args.out)
    for line in files.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for path in [*files.figures, *files.tables]:
        print(f"wrote {path}")
    print(f"index: {files.index} (and {files.index_html.name})")
    if files.verdicts:
        print()
        print(files.verdict_text())
    return 0
