"""``recurdepth report``: plots, tables and an index page from an experiment's results database."""

from __future__ import annotations

import argparse
from pathlib import Path

from recurdepth.errors import DataError
from recurdepth.experiments.spec import load_experiment
from recurdepth.experiments.store import DB_NAME
from recurdepth.experiments.sweep import db_path_for, default_out_dir
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
        "here), and index.md / index.html (figures embedded, plus PNG and SVG files). Same "
        "database, same files.",
    )
    p.add_argument("target", metavar="EXPERIMENT_OR_DB",
                   help="results.sqlite, a sweep output folder, or a preset name / YAML file")
    p.add_argument("--out", type=folder_arg, default=None,
                   help="the sweep's output folder when EXPERIMENT_OR_DB is an experiment")
    p.add_argument("--report-dir", type=Path, default=None,
                   help="where to write the report (default: report/ next to the database)")
    p.set_defaults(func=run)


def find_db(target: str, out: Path | None = None) -> Path:
    """The results database meant by a file, a sweep folder or an experiment name / YAML."""
    path = Path(target)
    if path.is_file() and not target.endswith((".yaml", ".yml")):
        return path
    if path.is_dir():
        if (path / DB_NAME).is_file():
            return path / DB_NAME
        raise DataError(f"{path} holds no {DB_NAME}; give the sweep's output folder or database")
    experiment = load_experiment(target)
    db = db_path_for(out if out is not None else default_out_dir(experiment))
    if not db.is_file():
        raise DataError(f"no results database for experiment {experiment.name!r} at {db}; run "
                        f"`recurdepth sweep {target}` first (or pass --out to its folder)")
    return db


def run(args: argparse.Namespace) -> int:
    from recurdepth.report import write_report

    files = write_report(find_db(args.target, args.out), args.report_dir)
    for path in [*files.figures, *files.tables]:
        print(f"wrote {path}")
    print(f"index: {files.index} (and {files.index_html.name})")
    if files.verdicts:
        print()
        print(files.verdict_text())
    return 0
