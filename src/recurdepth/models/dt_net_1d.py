"""1-D deep-thinking networks for strings (Bansal et al. 2022, the authors' ``dt_net_recall_1d``).

``Conv1d(1→w), ReLU`` · n × (``Conv1d(w+1→w)`` on ``cat[state, input]``, ReLU, 2 basic blocks of
w channels) · ``Conv1d(w→w), ReLU, Conv1d(w→w/2), ReLU, Conv1d(w/2→2)``: every convolution size 3,
stride 1, padding 1, no bias, no normalisation; 2 logits per position. Effective depth 4 + 5·iters.

On a data set with one label per string (``parity``: its task is not per position) the head
ends by reading the logits of the last position: the parity of a string is its last prefix sum,
so the label needs information from the whole string to travel to that end, as the last prefix
sum does (pooling over positions would let the head lose where the string ends). Slicing adds
no layer: the depth is the same.

``recall`` (``model.options.recall``, default on) concatenates the raw input to the state at every
iteration. Without it the first convolution of the unit reads the state alone; the authors'
``dt_net_1d`` drops that convolution instead, which would make the no-recall net one layer per
iteration shallower: here the two differ only in whether the input is seen (same depth, 3·w
fewer parameters).
"""

from __future__ import annotations

from torch import Tensor, nn

from recurdepth.data.tasks import task_of
from recurdepth.errors import ConfigError
from recurdepth.models.blocks import RecallUnit
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import UnrolledNet


class _Strings(nn.Module):
    """Turn the pipeline's (N, C, 1, L) string 'images' into (N, C, L) sequences."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2) if x.dim() == 4 else x


class _LastPosition(nn.Module):
    """The logits of the last position: (N, C, L) → (N, C), one row per string."""

    def forward(self, x: Tensor) -> Tensor:
        return x[..., -1]


def _conv(c_in: int, c_out: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, 3, padding=1, bias=False)


@register_family(
    "dt_net_1d",
    description="1-D deep-thinking net for strings, recall on by default; depth 4 + 5·iters",
    datasets=("prefix_sums", "parity"),
    depth_base=4,
    depth_per_iter=5,
    default_width={"prefix_sums": 400, "parity": 400},
    paper_depths=(154,),  # 30 iterations, the authors' training count
    options={"recall": True},
)
def build_dt_net_1d(mode: str, iters: int, width: int, dataset: str,
                    recall: bool = True) -> UnrolledNet:
    """Build a 1-D deep-thinking net (``recall``: the unit reads the input at every iteration)."""
    if not isinstance(recall, bool):
        raise ConfigError(f"model.options.recall must be true or false, got {recall!r}")
    if width < 4:
        raise ConfigError(f"width must be >= 4 for dt_net_1d (its head halves it), got {width}")
    stem = nn.Sequential(_Strings(), _conv(1, width), nn.ReLU())
    layers = [_conv(width, width), nn.ReLU(), _conv(width, width // 2), nn.ReLU(),
              _conv(width // 2, 2)]
    if not task_of(dataset).per_pixel:  # one label per string: read at the last position
        layers.append(_LastPosition())
    head = nn.Sequential(*layers)
    return UnrolledNet(family="dt_net_1d", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: RecallUnit(width, 1, recall=recall, dims=1),
                       head=head)
