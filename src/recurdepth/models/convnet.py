"""ConvNet family (paper §2.2, Table 5): two stem convs, n × ``Conv(w→w, pad 1)``, pooled head.

Effective depth counts every layer (paper Figure 1): 4 + iters. The authors' code counted only
convolutions ("depth 4 … 8" for iters 1 … 5); their sweep is iters 1 … 5 = effective depth 5 … 9.
"""

from __future__ import annotations

from torch import nn

from recurdepth.data.registry import get_dataset
from recurdepth.models.blocks import ConvUnit
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import UnrolledNet, conv3x3


@register_family(
    "convnet",
    description="ConvNet with max-pooled head; effective depth 4 + iters",
    datasets=("cifar10", "svhn", "emnist"),
    depth_base=4,
    depth_per_iter=1,
    default_width={"cifar10": 64, "svhn": 64, "emnist": 128},
    paper_depths=tuple(range(5, 10)),
)
def build_convnet(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build a ConvNet whose body is ``iters`` 3x3 convolutions of ``width`` channels."""
    info = get_dataset(dataset)
    stem = nn.Sequential(
        conv3x3(info.in_channels, width // 2, padding=0, bias=True), nn.ReLU(),
        conv3x3(width // 2, width, padding=0, bias=True), nn.ReLU(),
    )
    # 32 -> 30 -> 28 -> pool 9 -> conv 7 -> pool 2 (28 -> ... -> 2 for EMNIST): 2w * 2 * 2 = 8w.
    head = nn.Sequential(
        nn.MaxPool2d(3), conv3x3(width, 2 * width, padding=0, bias=True), nn.ReLU(),
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(8 * width, info.num_classes),
    )
    return UnrolledNet(family="convnet", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: ConvUnit(width), head=head)
