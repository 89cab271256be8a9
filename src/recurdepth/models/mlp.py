"""MLP family (paper §2.1): ``Linear(in→w), ReLU`` · n × ``Linear(w→w), ReLU`` · ``Linear(w→classes)``."""

from __future__ import annotations

from torch import nn

from recurdepth.data.registry import get_dataset
from recurdepth.models.blocks import LinearUnit
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import UnrolledNet


@register_family(
    "mlp",
    description="multi-layer perceptron; effective depth 2 + iters",
    datasets=("cifar10", "svhn", "emnist"),
    depth_base=2,
    depth_per_iter=1,
    default_width={"cifar10": 200, "svhn": 500, "emnist": 500},
    paper_depths=tuple(range(3, 11)),
)
def build_mlp(mode: str, iters: int, width: int, dataset: str) -> UnrolledNet:
    """Build an MLP of ``iters`` body layers (input: the flattened image)."""
    info = get_dataset(dataset)
    in_features = info.in_channels * info.image_size**2
    stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU())
    head = nn.Linear(width, info.num_classes)
    return UnrolledNet(family="mlp", mode=mode, dataset=dataset, iters=iters, stem=stem,
                       make_unit=lambda slots: LinearUnit(width), head=head)
