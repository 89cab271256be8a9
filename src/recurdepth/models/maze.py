"""Maze solvers (paper §4, appendix A.1): fully convolutional, 2 logits per pixel.

``Conv(3→c), ReLU`` · n × (2 basic blocks of c channels) · ``Conv(c→32), ReLU, Conv(32→8), ReLU,
Conv(8→2)``; every convolution 3x3, stride 1, padding 1, no bias. Effective depth 4 + 4·iters.
``maze_dilated`` dilates the body convolutions (paper Table 2): a larger receptive field at the
same depth and parameter count.
``maze_recall`` is the 2-D deep-thinking solver (Bansal et al. 2022, ``dt_net_recall_2d``): its
unit reads the maze at every iteration, ``Conv(c+3→c)`` on ``cat[state, maze]`` before the two
blocks; effective depth 4 + 5·iters.
"""

from __future__ import annotations

from torch import nn

from recurdepth.errors import ConfigError
from recurdepth.models.blocks import RecallUnit, ResidualUnit
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import UnrolledNet, conv3x3


def _maze_solver(family: str, mode: str, iters: int, width: int, dataset: str,
                 dilation: int) -> UnrolledNet:
    if dilation < 1:
        raise ConfigError(f"dilation must be >= 1, got {dilation}")
    stem = nn.Sequential(conv3x3(3, width), nn.ReLU())
    head = nn.Sequential(conv3x3(width, 32), nn.ReLU(), conv3x3(32, 8), nn.ReLU(), conv3x3(8, 2))
    model = UnrolledNet(family=family, mode=mode, dataset=dataset, iters=iters, stem=stem,
                        make_unit=lambda slots: ResidualUnit(width, dilation=dilation), head=head)
    model.dilation = dilation
    return model


@register_family(
    "maze",
    description="maze solver (fully convolutional); effective depth 4 + 4·iters",
    datasets=("mazes",),
    depth_base=4,
    depth_per_iter=4,
    default_width={"mazes": 128},
    paper_depths=(8, 12, 16, 20, 24, 28, 36, 44),
)
def build_maze(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build the paper's maze solver."""
    return _maze_solver("maze", mode, iters, width, dataset, dilation=1)


@register_family(
    "maze_dilated",
    description="maze solver with dilated body convolutions (Table 2); depth 4 + 4·iters",
    datasets=("mazes",),
    depth_base=4,
    depth_per_iter=4,
    default_width={"mazes": 128},
    paper_depths=(8, 12, 16, 20),
    options={"dilation": 2},
    variant_of="maze",
)
def build_maze_dilated(mode: str, iters: int, width: int, dataset: str,
                       dilation: int = 2) -> UnrolledNet:
    """Build a maze solver whose body convolutions have the given dilation."""
    return _maze_solver("maze_dilated", mode, iters, width, dataset, dilation=dilation)


@register_family(
    "maze_recall",
    description="maze solver whose unit reads the maze every iteration (recall); depth 4 + 5·iters",
    datasets=("mazes",),
    depth_base=4,
    depth_per_iter=5,
    default_width={"mazes": 128},
    paper_depths=(154,),  # 30 iterations, the deep-thinking authors' training count
    options={"recall": True},
    variant_of="maze",
)
def build_maze_recall(mode: str, iters: int, width: int, dataset: str,
                      recall: bool = True) -> UnrolledNet:
    """Build a recall maze solver (``recall=False``: the same unit without the maze input)."""
    if not isinstance(recall, bool):
        raise ConfigError(f"model.options.recall must be true or false, got {recall!r}")
    stem = nn.Sequential(conv3x3(3, width), nn.ReLU())
    head = nn.Sequential(conv3x3(width, 32), nn.ReLU(), conv3x3(32, 8), nn.ReLU(), conv3x3(8, 2))
    return UnrolledNet(family="maze_recall", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: RecallUnit(width, 3, recall=recall), head=head)
