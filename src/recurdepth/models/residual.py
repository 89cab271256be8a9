"""Residual families (paper §2.3, §3.1, appendix A.1).

* ``residual``: ``Conv(in→c, stride 2), ReLU`` · n × (2 basic blocks) · ``Conv(c→512, stride 2),
  ReLU, global average pool, Linear``; no normalisation, no biases. Effective depth 3 + 4·iters.
* ``residual_bn``: the same with BatchNorm after every convolution; each iteration of a recurrent
  model has its own BatchNorm layers (shared convolutions).
* ``residual_imagenet``: the paper gives no detail for its ImageNet residual family (§3, depths
  5 … 19). Ours is the BN family with an ImageNet stem (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2
  max-pool) and a body unit of one basic block (2 convolutions), so that every odd effective depth
  3 + 2·iters from 5 to 19 exists.
"""

from __future__ import annotations

from torch import nn

from recurdepth.data.registry import get_dataset
from recurdepth.models.blocks import ResidualUnit
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import UnrolledNet, conv3x3

HEAD_CHANNELS = 512


def _head(width: int, num_classes: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [conv3x3(width, HEAD_CHANNELS, stride=2)]
    if norm:
        layers.append(nn.BatchNorm2d(HEAD_CHANNELS))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(HEAD_CHANNELS, num_classes)]
    return nn.Sequential(*layers)


@register_family(
    "residual",
    description="residual network without normalisation; effective depth 3 + 4·iters",
    datasets=("cifar10", "svhn", "emnist"),
    depth_base=3,
    depth_per_iter=4,
    default_width={"cifar10": 512, "svhn": 512, "emnist": 512},
    paper_depths=(7, 11, 15, 19),
)
def build_residual(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build the paper's residual network (no BatchNorm)."""
    info = get_dataset(dataset)
    stem = nn.Sequential(conv3x3(info.in_channels, width, stride=2), nn.ReLU())
    return UnrolledNet(family="residual", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: ResidualUnit(width),
                       head=_head(width, info.num_classes, norm=False))


@register_family(
    "residual_bn",
    description="residual network with per-iteration BatchNorm; effective depth 3 + 4·iters",
    datasets=("cifar10", "svhn", "emnist"),
    depth_base=3,
    depth_per_iter=4,
    default_width={"cifar10": 256, "svhn": 256, "emnist": 256},
    paper_depths=(7, 11, 15, 19),
)
def build_residual_bn(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build the residual network with BatchNorm after every convolution (paper Table 1)."""
    info = get_dataset(dataset)
    stem = nn.Sequential(conv3x3(info.in_channels, width, stride=2), nn.BatchNorm2d(width), nn.ReLU())
    return UnrolledNet(family="residual_bn", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: ResidualUnit(width, norm=True, slots=slots),
                       head=_head(width, info.num_classes, norm=True))


@register_family(
    "residual_imagenet",
    description="ImageNet residual network (7x7 stem, per-iteration BN); effective depth 3 + 2·iters",
    datasets=("imagenet",),
    depth_base=3,
    depth_per_iter=2,
    default_width={"imagenet": 256},
    paper_depths=(5, 7, 9, 11, 13, 15, 17, 19),
)
def build_residual_imagenet(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build the ImageNet residual family (one basic block per iteration)."""
    info = get_dataset(dataset)
    stem = nn.Sequential(
        nn.Conv2d(info.in_channels, width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
    )
    return UnrolledNet(family="residual_imagenet", mode=mode, dataset=dataset, iters=iters,
                       stem=stem,
                       make_unit=lambda slots: ResidualUnit(width, blocks=1, norm=True, slots=slots),
                       head=_head(width, info.num_classes, norm=True))
