"""The maze plug-in (paper §4): per-pixel path labels with walls masked, and the maze data options.

Inputs are 0/255 images (walls 0 in every channel), scaled to 0/1, so a wall pixel stays exactly
0; the loss is the cross-entropy over non-wall pixels and a maze counts as solved only when every
non-wall pixel is right (SPEC §3). Maze data sets are made at a size (``data.options.size``, the
maze's cells per side), may be tested at a second size (``eval_size``) and trained with random
shifts on a larger canvas (``shift``); the keys before data options, ``data.maze_size``,
``data.eval_maze_size`` and ``data.maze_shift``, are their aliases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recurdepth.data.options import DataOption, at_least, odd_size
from recurdepth.data.tasks.base import DenseTask
from recurdepth.data.tasks.registry import register_task

if TYPE_CHECKING:
    from torch import Tensor


def wall_mask(x: Tensor) -> Tensor:
    """True on the non-wall pixels of maze inputs (N,3,H,W): any channel above 0."""
    return x.amax(dim=1) > 0


@register_task
class Maze(DenseTask):
    """Mazes: a path/not-path label per pixel, walls masked out, exact match per maze."""

    name = "maze"
    sized = True
    augmented = False
    divide_recurrent_lr = True

    def mask(self, x: Tensor) -> Tensor:
        return wall_mask(x)


# The options of maze data sets (recurdepth.data.registry records them on the "mazes" record).
MAZE_OPTIONS = {
    "size": DataOption(9, "maze size the run trains and tests on (odd; 9, 11, 13 are the paper's "
                          "small, medium, large)", rule=odd_size(), alias="maze_size"),
    "eval_size": DataOption(None, "also evaluate on mazes of this size, or of each size of a "
                                  "list (e.g. 13 or [11, 13])", nullable=True,
                            rule=odd_size(), alias="eval_maze_size", resumable=True, many=True),
    "shift": DataOption(0, "training mazes shifted by up to N px on a canvas 2N px larger",
                        rule=at_least(0), alias="maze_shift"),
}


__all__ = ["MAZE_OPTIONS", "Maze", "wall_mask"]
