"""What a data set's task means for training: its loss, its correct-count and its input mask.

A data-set record names its task (``classification`` or ``maze``, see ``recurdepth.data.registry``);
:func:`get_task` gives the object that holds the task's rules, so training and evaluation code asks
the task instead of branching on the data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from recurdepth.errors import ConfigError, choices_message


def wall_mask(x: Tensor) -> Tensor:
    """True on the non-wall pixels of maze inputs (N,3,H,W): any channel above 0."""
    return x.amax(dim=1) > 0


@dataclass(frozen=True)
class Task:
    """The loss and accuracy rules of one task."""

    name: str
    per_pixel: bool  # maze: a label per pixel, walls masked out, exact match over the maze

    def mask(self, x: Tensor) -> Tensor | None:
        """The pixels that count (maze: non-wall pixels), or None when every output counts."""
        return wall_mask(x) if self.per_pixel else None

    def correct(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Bool (N,): which samples of the batch are right (maze: every non-wall pixel)."""
        if not self.per_pixel:
            return logits.argmax(1) == y
        ok = (logits.argmax(1) == y) | ~wall_mask(x)
        return ok.flatten(1).all(dim=1)

    def loss_terms(self, logits: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy of the batch and its normaliser (samples, or non-wall pixels).

        Several processes each holding a slice of a batch add both terms over the processes to
        get the mean of the whole batch, which is why the two are kept apart.
        """
        per = F.cross_entropy(logits.float(), y, reduction="none")
        if not self.per_pixel:
            return per.sum(), per.new_tensor(float(len(y)))
        mask = wall_mask(x)
        return (per * mask).sum(), mask.sum().to(per.dtype)

    def loss(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Mean cross-entropy of the batch (maze: averaged over non-wall pixels only)."""
        total, denom = self.loss_terms(logits, y, x)
        return total / denom.clamp_min(1)

TASKS: dict[str, Task] = {"classification": Task("classification", per_pixel=False),
                          "maze": Task("maze", per_pixel=True)}


def get_task(name: str) -> Task:
    """The Task called ``name`` (ConfigError listing the tasks)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(choices_message("task", name, sorted(TASKS))) from None


def task_of(dataset: str) -> Task:
    """The Task of a registered data set."""
    from recurdepth.data.registry import get_dataset

    return get_task(get_dataset(dataset).task)


__all__ = ["TASKS", "Task", "get_task", "task_of", "wall_mask"]
