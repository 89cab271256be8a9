"""Command start-up: ``recurdepth --help`` and ``mazes generate`` against ``python -c pass``.

Every command is a fresh process, timed end to end (wall clock, median of ``--repeat`` runs) in
the same run as the interpreter's own start-up, so the table shows both seconds and the ratio
to a bare Python. ``mazes generate`` writes 50,000 + 10,000 mazes of size 9 into a fresh
temporary folder each time (numba's compiled kernels come from its on-disk cache after the first
run, which is not timed). Targets: ``--help`` <= 0.5 s, 60,000 mazes end to end <= 1.5 s.

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The console script's own entry: the same code path as the installed `recurdepth` command.
RECURDEPTH = [sys.executable, "-c", "import sys; from recurdepth.cli import main; sys.exit(main())"]


def wall(cmd: list[str], *, setup=None) -> float:
    """Seconds of wall time for one run of ``cmd`` (``setup()`` runs first, untimed)."""
    if setup is not None:
        setup()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median shown)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    out = tmp / "mazes_9"

    def fresh() -> None:
        shutil.rmtree(out, ignore_errors=True)

    generate = [*RECURDEPTH, "mazes", "generate", "--size", "9", "--train", "50000",
                "--test", "10000", "--seed", "0", "--out", str(out), "--no-progress"]
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"], None, None),
        ("recurdepth --help", [*RECURDEPTH, "--help"], None, 0.5),
        ("recurdepth --version", [*RECURDEPTH, "--version"], None, None),
        ("recurdepth models", [*RECURDEPTH, "models"], None, None),
        ("recurdepth mazes --help", [*RECURDEPTH, "mazes", "--help"], None, None),
        ("mazes generate 60,000 s=9", generate, fresh, 1.5),
    ]
    try:
        wall(generate, setup=fresh)  # fills numba's cache; not timed
        rows = []
        for label, cmd, setup, target in cases:
            times = [wall(cmd, setup=setup) for _ in range(args.repeat)]
            rows.append((label, statistics.median(times), min(times), target))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = rows[0][1]
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
          f"median of {args.repeat} runs")
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'x python':>9} {'target':>8}")
    for label, med, low, target in rows:
        goal = "" if target is None else f"<= {target:g} s" + (" ok" if med <= target else " MISS")
        print(f"{label:<28} {med:>9.3f} {low:>7.3f} {med / base:>9.1f} {goal:>8}")


if __name__ == "__main__":
    main()
