"""What a data set's task means: its loss, its correct-count, its input mask and its data options.

A data-set record names its task (``classification`` or ``maze``, see ``recurdepth.data.registry``);
:func:`task_of` gives the :class:`Task` that holds the task's rules, so configs, training,
evaluation and reports ask the task instead of branching on the data set. A new kind of task is
one :func:`register_task` call. This module imports no torch (configs and reports read the
task's attributes); the loss imports it when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recurdepth.errors import ConfigError, choices_message

if TYPE_CHECKING:
    from torch import Tensor


def wall_mask(x: Tensor) -> Tensor:
    """True on the non-wall pixels of maze inputs (N,3,H,W): any channel above 0."""
    return x.amax(dim=1) > 0


@dataclass(frozen=True)
class Task:
    """The loss and accuracy rules of one task, and which data and optimiser options it takes."""

    name: str
    per_pixel: bool  # a label per pixel, walls masked out, exact match over the whole example
    # Examples are made at a chosen size: data.maze_size, data.eval_maze_size (a second test
    # size) and data.maze_shift apply, and results report the size.
    sized: bool = False
    augmented: bool = True  # crop/flip training augmentation applies (data.crop_padding, ...)
    # Default of optim.recur_lr_divide: the authors' maze code divides the learning rate of the
    # shared recurrent block by the number of iterations.
    divide_recurrent_lr: bool = False

    def check_size(self, size: int, key: str) -> None:
        """ConfigError naming ``key`` unless ``size`` is a valid example size (mazes: odd >= 3)."""
        if size < 3 or size % 2 == 0:
            raise ConfigError(f"{key} must be an odd number >= 3, got {size}")

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
        import torch.nn.functional as F

        per = F.cross_entropy(logits.float(), y, reduction="none")
        if not self.per_pixel:
            return per.sum(), per.new_tensor(float(len(y)))
        mask = wall_mask(x)
        return (per * mask).sum(), mask.sum().to(per.dtype)

    def loss(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Mean cross-entropy of the batch (maze: averaged over non-wall pixels only)."""
        total, denom = self.loss_terms(logits, y, x)
        return total / denom.clamp_min(1)

    def chance(self, num_classes: int) -> float:
        """Accuracy of guessing, in percent (0 for per-pixel tasks: only exact solutions count)."""
        return 0.0 if self.per_pixel else 100.0 / num_classes

    def outputs_per_sample(self, num_classes: int, side: int) -> int:
        """Logits the model gives per sample on ``side``-px inputs (per pixel, or per image)."""
        return num_classes * (side * side if self.per_pixel else 1)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to the tasks data sets can name (ValueError if its name is taken)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


register_task(Task("classification", per_pixel=False))
register_task(Task("maze", per_pixel=True, sized=True, augmented=False, divide_recurrent_lr=True))


def get_task(name: str) -> Task:
    """The Task called ``name`` (ConfigError listing the tasks)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(choices_message("task", name, sorted(TASKS))) from None


def task_of(dataset: str) -> Task:
    """The Task of a registered data set (ConfigError listing the data sets)."""
    from recurdepth.data.registry import get_dataset

    return get_task(get_dataset(dataset).task)


__all__ = ["TASKS", "Task", "get_task", "register_task", "task_of", "wall_mask"]
