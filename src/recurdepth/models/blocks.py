"""Body units shared by several families: linear, convolutional and residual units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurdepth.models.unrolled import Unit, conv3x3


class LinearUnit(Unit):
    """``relu(Linear(w→w))``: the MLP body unit."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return F.relu(self.fc(x))


class ConvUnit(Unit):
    """``relu(Conv3x3(w→w, pad 1))``: the ConvNet body unit."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = conv3x3(width, width, bias=True)

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        return F.relu(self.conv(x))


class ResidualUnit(Unit):
    """``blocks`` basic blocks ``relu(x + conv2(relu(conv1(x))))`` of ``width`` channels.

    With ``norm=True`` a BatchNorm follows every convolution and each of the ``slots`` iterations
    has its own BatchNorm layers (paper §3.1) while the convolutions are shared. ``dilation``
    dilates every convolution (paper Table 2) with padding that keeps the spatial size.
    ``dims=1``: 1-D convolutions (strings) instead of 2-D ones (no norm).
    """

    def __init__(self, width: int, *, blocks: int = 2, norm: bool = False, slots: int = 1,
                 dilation: int = 1, dims: int = 2) -> None:
        super().__init__()
        self.blocks = blocks
        self.convs = nn.ModuleList(
            conv3(width, width, dims=dims, dilation=dilation) for _ in range(2 * blocks)
        )
        if norm:
            self.norms = nn.ModuleList(
                nn.ModuleList(nn.BatchNorm2d(width) for _ in range(2 * blocks)) for _ in range(slots)
            )

    def forward(self, x: Tensor, slot: int = 0) -> Tensor:
        bns = self.norms[slot] if self.norms is not None else None
        for b in range(self.blocks):
            out = self.convs[2 * b](x)
            if bns is not None:
                out = bns[2 * b](out)
            out = self.convs[2 * b + 1](F.relu(out))
            if bns is not None:
                out = bns[2 * b + 1](out)
            x = F.relu(x + out)
        return x


def conv3(c_in: int, c_out: int, *, dims: int = 2, dilation: int = 1) -> nn.Module:
    """A size-3, stride-1, bias-free convolution that keeps the size, 1-D or 2-D."""
    if dims == 2:
        return conv3x3(c_in, c_out, padding=dilation, dilation=dilation)
    if dims == 1:
        return nn.Conv1d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False)
    raise ValueError(f"dims must be 1 or 2, got {dims}")


class RecallUnit(Unit):
    """``blocks(relu(conv(cat[h, x])))``: Bansal et al.'s recall unit, reading the input each time.

    With ``recall`` the first convolution sees the state and the model's raw input (channels
    ``width + in_channels``); without it, the same convolution sees the state only, so both
    variants have the same depth and differ only in whether the input is concatenated.
    """

    def __init__(self, width: int, in_channels: int, *, recall: bool, dims: int = 2,
                 blocks: int = 2) -> None:
        super().__init__()
        self.recall = bool(recall)  # shadows Unit.recall: the unrolled loop passes the input
        self.conv = conv3(width + (in_channels if recall else 0), width, dims=dims)
        self.residual = ResidualUnit(width, blocks=blocks, dims=dims)

    def forward(self, h: Tensor, slot: int = 0, inp: Tensor | None = None) -> Tensor:
        if self.recall:
            if inp is None:
                raise ValueError("a recall unit needs the model input (inp)")
            # Strings arrive as (N, C, 1, L) images; the state is (N, width, L).
            h = torch.cat([h, inp.reshape(inp.shape[0], -1, *h.shape[2:])], dim=1)
        return self.residual(F.relu(self.conv(h)))
