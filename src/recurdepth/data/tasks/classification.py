"""Image classification: one label per image, cross-entropy, top-1 accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recurdepth.data.tasks.base import Task
from recurdepth.data.tasks.registry import register_task

if TYPE_CHECKING:
    from torch import Tensor


@register_task
class Classification(Task):
    """One label per sample: the paper's CIFAR-10, SVHN, EMNIST and ImageNet runs."""

    name = "classification"

    def correct(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        return logits.argmax(1) == y

    def loss_terms(self, logits: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        import torch.nn.functional as F

        per = F.cross_entropy(logits.float(), y, reduction="none")
        return per.sum(), per.new_tensor(float(len(y)))
