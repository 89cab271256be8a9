"""Body units shared by several families: linear, convolutional and residual units."""

from __future__ import annotations

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
    """

    def __init__(self, width: int, *, blocks: int = 2, norm: bool = False, slots: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.blocks = blocks
        self.convs = nn.ModuleList(
            conv3x3(width, width, padding=dilation, dilation=dilation) for _ in range(2 * blocks)
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
