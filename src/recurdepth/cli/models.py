"""``recurdepth models``: the paper's model configurations with depths and parameter counts."""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path
from typing import Any

# The same columns as recurdepth.models.registry.ZOO_COLUMNS (that module imports torch).
COLUMNS = ("family", "mode", "dataset", "effective_depth", "iters", "parameters")


@cache
def zoo() -> dict[str, Any]:
    """The model zoo table stored with the package (``models/zoo.json``; no torch needed)."""
    # By path: importing the recurdepth.models package would import torch.
    path = Path(__file__).resolve().parent.parent / "models" / "zoo.json"
    return json.loads(path.read_text(encoding="utf-8"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model zoo with effective depths and parameter counts",
        description="List every model configuration of the paper: family, mode, data set, "
        "effective depth, iterations and parameter count (shared weights counted once).",
    )
    p.add_argument("--family", choices=sorted(zoo()["families"]), help="only this family")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.set_defaults(func=run)


def format_table(rows: list[dict]) -> str:
    """Render rows as an aligned text table with thousands separators for parameters."""
    cells = [[("-" if r[c] is None else f"{r[c]:,}" if c == "parameters" else str(r[c]))
              for c in COLUMNS] for r in rows]
    header = [c.replace("_", " ") for c in COLUMNS]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    right = {3, 4, 5}
    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(vals, widths))).rstrip()
    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    rows = [r for r in zoo()["rows"] if args.family in (None, r["family"])]
    if args.format == "json":
        print(json.dumps([{c: r[c] for c in COLUMNS} for r in rows], indent=2))
    else:
        print(format_table(rows))
        if args.family:
            print(f"\n{args.family}: {zoo()['families'][args.family]}")
    return 0
