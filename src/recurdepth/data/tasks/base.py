"""The base of every task: the loss, correct-count, mask, chance level and input scale of a problem.

A task is a subclass of :class:`Task` in its own module, registered with
:func:`recurdepth.data.tasks.register_task`. Flags are class attributes; the methods take the
model's logits, the targets and the (scaled) inputs of a batch. Torch is imported where a method
runs, so configs and reports read a task's flags without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from torch import Tensor


class Task:
    """The rules of one kind of problem; subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    # A label per position (pixel, bit): the loss averages over the positions that count (mask)
    # and a sample is correct only when every counted position is (exact match).
    per_pixel: ClassVar[bool] = False
    # Examples are made at a chosen size: the data set's options ``size`` (trained on),
    # ``eval_size`` (a second test size) apply, and results report the size.
    sized: ClassVar[bool] = False
    augmented: ClassVar[bool] = True  # crop/flip training augmentation applies (data.crop_padding...)
    # Default of optim.recur_lr_divide: the authors' maze code divides the learning rate of the
    # shared recurrent block by the number of iterations.
    divide_recurrent_lr: ClassVar[bool] = False
    # Raw inputs are integers 0..input_range; the model sees them divided by it (then normalised
    # by the data set's mean/std, if any).
    input_range: ClassVar[float] = 255.0

    def scale_inputs(self, x: Tensor) -> Tensor:
        """Raw integer inputs as the floats the model sees (before any mean/std normalisation)."""
        return x.float() / self.input_range

    def mask(self, x: Tensor) -> Tensor | None:
        """The positions that count (bool, one per label), or None when every output counts."""
        return None

    def correct(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Bool (N,): which samples of the batch are right."""
        raise NotImplementedError

    def loss_terms(self, logits: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy of the batch and its normaliser (samples, or counted positions).

        Several processes each holding a slice of a batch add both terms over the processes to
        get the mean of the whole batch, which is why the two are kept apart.
        """
        raise NotImplementedError

    def loss(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """Mean loss of the batch (per-position tasks: over the counted positions)."""
        total, denom = self.loss_terms(logits, y, x)
        return total / denom.clamp_min(1)

    def chance(self, num_classes: int) -> float:
        """Accuracy of guessing, in percent."""
        return 100.0 / num_classes

    def outputs_per_sample(self, num_classes: int, side: int) -> int:
        """Logits the model gives per sample on inputs of ``side`` (per position, or per sample)."""
        return num_classes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class DenseTask(Task):
    """A label per position of a ``spatial_dims``-D input; exact match over the counted positions."""

    per_pixel = True
    spatial_dims: ClassVar[int] = 2

    def correct(self, logits: Tensor, y: Tensor, x: Tensor) -> Tensor:
        ok = logits.argmax(1) == y
        mask = self.mask(x)
        if mask is not None:
            ok = ok | ~mask
        return ok.flatten(1).all(dim=1)

    def loss_terms(self, logits: Tensor, y: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        import torch.nn.functional as F

        per = F.cross_entropy(logits.float(), y, reduction="none")
        mask = self.mask(x)
        if mask is None:
            return per.sum(), per.new_tensor(float(per.numel()))
        return (per * mask).sum(), mask.sum().to(per.dtype)

    def chance(self, num_classes: int) -> float:
        """0: only exact solutions count, which guessing almost never gives."""
        return 0.0

    def outputs_per_sample(self, num_classes: int, side: int) -> int:
        return num_classes * side**self.spatial_dims


class BitStrings:
    """Mixin for tasks on 1-D bit strings made at a chosen length (prefix sums, parity)."""

    spatial_dims: ClassVar[int] = 1  # positions per example: the length (memory estimates)
    sized: ClassVar[bool] = True
    augmented: ClassVar[bool] = False
    input_range: ClassVar[float] = 1.0  # bits are stored as 0/1: the network sees exactly 0 and 1

    def size_text(self, size: int) -> str:
        """How reports name examples of ``size``: ``64-bit strings``."""
        return f"{size}-bit strings"


__all__ = ["BitStrings", "DenseTask", "Task"]
