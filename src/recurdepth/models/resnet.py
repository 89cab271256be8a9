"""Standard ResNets used as baselines (torchvision's implementation).

* ``resnet18``: the CIFAR variant (3x3 stride-1 stem, no max-pool) of paper Table 1; 11,173,962
  parameters on CIFAR-10.
* ``resnet50``: ImageNet ResNet-50 (paper §3: 76.48% top-1). Mode ``recurrent`` is the paper's
  weight-shared variant (75.13%): inside each stage every block whose input and output shapes
  match (all but the first) shares one set of convolution weights; each block keeps its own
  BatchNorm layers, as the recurrent BN models keep per-iteration BatchNorm.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn
from torchvision.models import resnet18, resnet50

from recurdepth.data.registry import get_dataset
from recurdepth.errors import ConfigError
from recurdepth.models.registry import register_family
from recurdepth.models.unrolled import RecurDepthModel, count_layers


class TorchvisionResNet(RecurDepthModel):
    """A torchvision ResNet as a zoo model (fixed depth, no iters)."""

    def __init__(self, net: nn.Module, *, family: str, mode: str, dataset: str) -> None:
        super().__init__()
        self.net = net
        self.family, self.mode, self.dataset, self.iters = family, mode, dataset, None

    @property
    def effective_depth(self) -> int:
        return count_layers(self.net)

    def forward(self, x: Tensor, iters: int | None = None) -> Tensor:
        if iters is not None:
            raise ConfigError(f"{self.family} has a fixed depth: iters must be None")
        return self.net(x)

    def feedforward_twin(self) -> TorchvisionResNet:
        """Return the unshared ResNet with this model's (possibly shared) weights."""
        if self.mode != "recurrent":
            raise ConfigError("feedforward_twin() needs a weight-shared (recurrent) model")
        twin = build_resnet50("feedforward", None, 0, self.dataset)
        twin.net.load_state_dict(copy.deepcopy(self.net.state_dict()))
        return twin.to(next(self.parameters()).device)


@register_family(
    "resnet18",
    description="ResNet-18, CIFAR variant (3x3 stem, no max-pool); Table 1 baseline",
    datasets=("cifar10", "svhn", "emnist"),
    modes=("feedforward",),
    fixed_depth=18,
    default_width={"cifar10": 64, "svhn": 64, "emnist": 64},
    paper_depths=(18,),
)
def build_resnet18(mode: str, iters: None, width: int, dataset: str) -> TorchvisionResNet:
    """Build the CIFAR-style ResNet-18 (torchvision blocks, 3x3 stride-1 stem, no max-pool)."""
    if width != 64:
        raise ConfigError("resnet18 has the standard width 64 only")
    info = get_dataset(dataset)
    net = resnet18(num_classes=info.num_classes)
    net.conv1 = nn.Conv2d(info.in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return TorchvisionResNet(net, family="resnet18", mode=mode, dataset=dataset)


@register_family(
    "resnet50",
    description="ImageNet ResNet-50; mode recurrent shares weights within each stage",
    datasets=("imagenet",),
    fixed_depth=50,
    default_width={"imagenet": 64},
    paper_depths=(50,),
)
def build_resnet50(mode: str, iters: None, width: int, dataset: str) -> TorchvisionResNet:
    """Build ResNet-50, with within-stage weight sharing when ``mode == "recurrent"``."""
    info = get_dataset(dataset)
    net = resnet50(num_classes=info.num_classes)
    if mode == "recurrent":
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            shared = stage[1]
            for block in list(stage)[2:]:
                block.conv1, block.conv2, block.conv3 = shared.conv1, shared.conv2, shared.conv3
    return TorchvisionResNet(net, family="resnet50", mode=mode, dataset=dataset)
