"""``recurdepth mazes``: generate, show and inspect the maze data sets (paper §4)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from recurdepth.errors import ConfigError
from recurdepth.paths import folder_arg

# Figures about data sets go here by default: never inside a data set (its folder is its content).
REPORTS = Path("reports") / "mazes"

# Optional packages numba imports on start-up that the maze kernels never use: scipy (a version
# check, then scipy.linalg to look for BLAS when the first kernel loads) and cffi (pycparser).
NUMBA_EXTRAS_UNUSED = ("scipy", "cffi")


@contextlib.contextmanager
def numba_without_unused_extras() -> Iterator[None]:
    """Import numba and load the maze kernels without the packages in NUMBA_EXTRAS_UNUSED.

    They cost ~0.17 s of the ~1 s a 60,000-maze ``mazes generate`` took (measured). numba then
    treats both as absent for the rest of the process (no BLAS-backed dot, no cffi calls; the
    kernels use neither), so this applies only when numba is not loaded yet; both can be
    imported again afterwards.
    """
    if "numba" in sys.modules:
        yield
        return
    blocked = [name for name in NUMBA_EXTRAS_UNUSED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def output_path(out: Path | None, default: Path, data_dirs: list[Path]) -> Path:
    """``out`` (or ``default``), refused when it lies inside one of ``data_dirs``."""
    path = out if out is not None else default
    for d in data_dirs:
        if path.resolve().is_relative_to(Path(d).resolve()):
            raise ConfigError(f"{path} is inside the data set {d}; write figures elsewhere "
                              f"(--out PATH outside the data folder)")
    return path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``recurdepth mazes generate|show|stats`` to the sub-command parsers."""
    p = sub.add_parser(
        "mazes",
        help="generate, show and inspect maze data sets",
        description="Maze data sets of the paper (§4): randomized-DFS mazes of odd size s (9, 11, 13 "
        "are small, medium, large), images of side 2(s+2)+2 px, shortest-path targets.",
    )
    msub = p.add_subparsers(dest="mazes_command", metavar="ACTION", required=True)

    g = msub.add_parser(
        "generate",
        help="generate train and test splits of one size",
        description="Generate deduplicated train and test splits (no test maze equals a training "
        "maze) as uint8 .npy files with a manifest. Same seed, same bytes on any machine. An existing "
        "identical data set is left alone; a different one is refused.",
    )
    g.add_argument("--size", type=int, default=9, help="maze size s, odd >= 3 (default 9)")
    g.add_argument("--train", type=int, default=50000, help="training mazes (default 50000)")
    g.add_argument("--test", type=int, default=10000, help="test mazes (default 10000)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--out", type=folder_arg, default=None,
                   help="output folder (default DATA_ROOT/mazes_SIZE)")
    g.add_argument("--data-root", type=Path, default=Path("data"),
                   help="data root for the default --out (default ./data)")
    g.add_argument("--dfs-root", choices=("start", "random"), default="start",
                   help="root the DFS at the start cell (the paper's setting) or at a random cell")
    g.add_argument("--threads", type=int, default=1,
                   help="CPU threads for the kernels, 0 = all (default 1; the output is the same)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=run_generate)

    s = msub.add_parser(
        "show",
        help="save a PNG grid of mazes and their solutions",
        description="Save a PNG grid of inputs beside their solutions (like the paper's Figure 3).",
    )
    s.add_argument("dir", type=Path, help="a data set folder (or a published maze_data_<split>_<size>)")
    s.add_argument("--split", choices=("train", "test"), default="train", help="split (default train)")
    s.add_argument("--count", type=int, default=8, help="number of mazes (default 8)")
    s.add_argument("--start", type=int, default=0, help="index of the first maze (default 0)")
    s.add_argument("--out", type=Path, default=None,
                   help=f"PNG path (default {REPORTS}/<DIR name>/examples_SPLIT.png)")
    s.set_defaults(func=run_show)

    t = msub.add_parser(
        "stats",
        help="counts, duplicates, overlap and path lengths of data sets",
        description="Print counts, duplicate rate, train/test overlap and the optimal path-length "
        "distribution (cell steps) of each split, and save a histogram PNG like the paper's Figure 4.",
    )
    t.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="data set folders")
    t.add_argument("--out", "--histogram", dest="out", type=Path, default=None,
                   help=f"histogram PNG path (default {REPORTS}/<DIR names>/path_lengths.png)")
    t.add_argument("--no-verify", action="store_true", help="skip the checksum verification")
    t.set_defaults(func=run_stats)


def run_generate(args: argparse.Namespace) -> int:
    """Generate one data set (or report that it already exists)."""
    with numba_without_unused_extras():
        code = _generate(args)
    # Once numba has loaded kernels, the garbage collections of interpreter shutdown walk its
    # objects for ~0.12 s (measured; more than making 60,000 mazes). Nothing left at exit needs
    # collecting (the files are closed), so they are frozen out of it; in-process callers see
    # this only when their interpreter exits.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    return code


def _generate(args: argparse.Namespace) -> int:
    from recurdepth.data.mazes import generate_dataset, maze_dir
    from recurdepth.data.mazes.dataset import dataset_identity, existing_dataset
    from recurdepth.data.mazes.generate import check_size

    size = check_size(args.size)
    out = args.out if args.out is not None else maze_dir(args.data_root, size)
    if args.train < 0 or args.test < 0:
        raise ConfigError(f"--train and --test must be >= 0, got {args.train} and {args.test}")
    if existing_dataset(out, dataset_identity(size, args.train, args.test, args.seed, args.dfs_root)):
        print(f"{out}: this data set already exists, nothing to do")
        return 0
    t0 = time.perf_counter()
    generate_dataset(out, size=size, n_train=args.train, n_test=args.test, seed=args.seed,
                     progress=not args.no_progress, dfs_root=args.dfs_root,
                     threads=args.threads or None)
    seconds = time.perf_counter() - t0
    total = args.train + args.test
    print(f"{out}: {args.train:,} train + {args.test:,} test mazes of size {size} in {seconds:.2f} s "
          f"({total / max(seconds, 1e-9):,.0f} mazes/s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Save a PNG grid of mazes and solutions."""
    from recurdepth.data.mazes import open_maze_folder
    from recurdepth.data.mazes.plots import show_grid

    splits = open_maze_folder(args.dir, verify=False)
    if args.split not in splits:
        raise ConfigError(f"{args.dir} has no {args.split} split (it has: {', '.join(splits)})")
    split = splits[args.split]
    if args.count < 1 or not 0 <= args.start < len(split):
        raise ConfigError(f"--count must be >= 1 and --start in [0, {len(split) - 1}]")
    out = output_path(args.out, REPORTS / Path(args.dir).resolve().name
                      / f"examples_{args.split}.png", [args.dir])
    show_grid(split, out, count=args.count, start=args.start)
    print(f"wrote {out}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print statistics of data sets and save a path-length histogram."""
    from recurdepth.data.mazes import open_maze_folder
    from recurdepth.data.mazes.dataset import dataset_manifest
    from recurdepth.data.mazes.plots import path_length_histogram
    from recurdepth.data.mazes.stats import split_statistics

    names = "+".join(Path(d).resolve().name for d in args.dirs)
    out = output_path(args.out, REPORTS / names / "path_lengths.png", args.dirs)
    lengths = {}
    for folder in args.dirs:
        splits = open_maze_folder(folder, verify=not args.no_verify)
        stats = split_statistics(splits)
        size = next(iter(splits.values())).size
        manifest = dataset_manifest(folder)
        origin = (f", seed {manifest['seed']}, DFS rooted at the {manifest['dfs_root']} cell"
                  if manifest else ", published layout")
        print(f"{folder}  (size {size}{origin})")
        for name, st in stats.items():
            pl = st["path_length"]
            overlap = f"  overlap with train {st['overlap_with_train']}" if "overlap_with_train" in st else ""
            print(f"  {name:5s} {st['count']:>7,} mazes  duplicates {st['duplicates']} "
                  f"({100 * st['duplicate_rate']:.2f}%){overlap}")
            gen = (manifest or {}).get("splits", {}).get(name)
            if gen:
                print(f"        generation: {gen['drawn']:,} drawn, {gen['duplicates_removed']} duplicates and "
                      f"{gen['overlap_removed']} copies of train mazes removed "
                      f"({100 * (gen['drawn'] - st['count']) / max(gen['drawn'], 1):.2f}%)")
            if pl["count"]:
                print(f"        path length (cell steps): mean {pl['mean']:.2f}  std {pl['std']:.2f}  "
                      f"min {pl['min']}  median {pl['median']:g}  max {pl['max']}")
                print("        histogram: " + " ".join(f"{k}:{v}" for k, v in pl["histogram"].items()))
        label = f"{size}x{size}" if f"{size}x{size}" not in lengths else f"{size}x{size} {folder}"
        lengths[label] = np.concatenate([s.path_lengths() for s in splits.values()])
    path_length_histogram(lengths, out)
    print(f"wrote {out}")
    return 0
