"""The paper's maze data sets (SPEC §2, paper §4): generate, solve, render, store, load, inspect.

``generate.py`` makes mazes with compiled kernels (``kernels.py``), ``dataset.py`` stores and loads
them (with a manifest and checksums), ``stats.py`` and ``plots.py`` inspect them.
"""

from recurdepth.data.mazes.dataset import (
    MazeSplit,
    generate_dataset,
    load_dataset_split,
    load_maze_split,
    load_published_split,
    maze_dir,
    open_maze_folder,
    published_dir,
)
from recurdepth.data.mazes.generate import (
    DFS_ROOTS,
    GENERATOR_VERSION,
    PAPER_SIZES,
    MazeBatch,
    MazeGenerator,
    cells_per_side,
    check_size,
    count_distinct_mazes,
    generate_mazes,
    image_side,
    path_length_stats,
    path_lengths_from_solutions,
)

__all__ = [
    "DFS_ROOTS",
    "GENERATOR_VERSION",
    "PAPER_SIZES",
    "MazeBatch",
    "MazeGenerator",
    "MazeSplit",
    "cells_per_side",
    "check_size",
    "count_distinct_mazes",
    "generate_dataset",
    "generate_mazes",
    "image_side",
    "load_dataset_split",
    "load_maze_split",
    "load_published_split",
    "maze_dir",
    "open_maze_folder",
    "path_length_stats",
    "path_lengths_from_solutions",
    "published_dir",
]
