"""Losses and accuracies of a batch and of a model, by the rules of the data set's task.

The rules live in :class:`recurdepth.data.tasks.Task`: for mazes (SPEC §3) the loss is the
cross-entropy averaged over non-wall pixels only (inputs reach the model as ``x / 255``, so a wall
pixel is 0 in every channel), and a maze counts as solved only if the argmax prediction equals
the target on every non-wall pixel (exact match).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from recurdepth.errors import ConfigError
from recurdepth.data.tasks import Task, wall_mask

if TYPE_CHECKING:
    from recurdepth.training.config import RunConfig


def loss_and_correct(logits: Tensor, y: Tensor, x: Tensor, *, task: Task) -> tuple[Tensor, Tensor]:
    """Mean loss of a batch and its number of correct samples (both 0-d tensors, no sync)."""
    return task.loss(logits, y, x), task.correct(logits, y, x).sum()


def loss_terms(logits: Tensor, y: Tensor, x: Tensor, *, task: Task) -> tuple[Tensor, Tensor, Tensor]:
    """Summed loss, its normaliser (samples, or non-wall pixels for mazes) and the correct count."""
    total, denom = task.loss_terms(logits, y, x)
    return total, denom, task.correct(logits, y, x).sum()


def count_correct(logits: Tensor, y: Tensor, x: Tensor, *, task: Task) -> Tensor:
    """Number of correct samples in a batch (0-d tensor)."""
    return task.correct(logits, y, x).sum()


def autocast(device: torch.device | str, amp: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``amp`` (off, bf16, fp16) on ``device``."""
    if amp in ("off", None):
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def prepare_input(x: Tensor, channels_last: bool) -> Tensor:
    """Return ``x`` in channels-last memory format when asked (4-D inputs only)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], *, task: Task,
             iters: int | None = None, amp: str = "off", channels_last: bool = False) -> float:
    """Accuracy in percent of ``model`` (at ``iters`` iterations, if recurrent) over ``batches``."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64)
    total = 0
    try:
        for x, y in batches:
            x = prepare_input(x, channels_last)
            with autocast(x.device, amp):
                logits = model(x) if iters is None else model(x, iters)
            correct = correct.to(x.device) + count_correct(logits, y, x, task=task)
            total += len(y)
    finally:
        model.train(was_training)
    return 100.0 * int(correct) / max(total, 1)


def usable_iters(model: nn.Module, requested: int) -> tuple[int, str | None]:
    """``requested`` capped at what the model can run, with a note saying why when capped.

    A BN-recurrent model has BatchNorm statistics for its trained iterations only, so it cannot
    "think longer"; other recurrent models run any number of iterations.
    """
    limit = getattr(model, "max_iters", None)
    if limit is not None and requested > limit:
        return limit, (f"evaluated up to {limit} iterations instead of {requested}: this model has "
                       f"per-iteration BatchNorm for {limit} iterations only")
    return requested, None


@torch.no_grad()
def accuracy_per_iteration(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], *,
                           task: Task, max_iters: int, amp: str = "off",
                           channels_last: bool = False) -> list[float]:
    """Accuracy in percent after each iteration 1..max_iters of a recurrent model (one pass)."""
    if not getattr(model, "recurrent", False) or not hasattr(model, "outputs_per_iteration"):
        raise ConfigError("accuracy per iteration needs a recurrent model with a body; "
                          "a feed-forward model runs a fixed number of units")
    was_training = model.training
    model.eval()
    correct = torch.zeros(max_iters, dtype=torch.int64)
    total = 0
    try:
        for x, y in batches:
            x = prepare_input(x, channels_last)
            with autocast(x.device, amp):
                outs = model.outputs_per_iteration(x, max_iters)
            counts = torch.stack([count_correct(o, y, x, task=task) for o in outs])
            correct = correct.to(x.device) + counts
            total += len(y)
    finally:
        model.train(was_training)
    return [100.0 * int(c) / max(total, 1) for c in correct.cpu()]


def evaluate(model: nn.Module, cfg: RunConfig, batches: Iterable[tuple[Tensor, Tensor]], *,
             iters: int | None = None, per_iter: bool = True) -> dict[str, Any]:
    """Accuracy of ``model`` over ``batches`` with the run's evaluation options.

    Returns ``{"acc", "acc_per_iter", "note"}``: ``acc`` at the trained iterations; for a
    recurrent model and ``per_iter``, ``acc_per_iter[i]`` after i+1 iterations up to ``iters``
    (default: the trained iterations; capped, with a note, for per-iteration BN models).
    """
    kw = {"task": cfg.task, "amp": cfg.runtime.amp,
          "channels_last": bool(cfg.runtime.channels_last)}
    trained = cfg.model.iters
    if not (getattr(model, "recurrent", False) and hasattr(model, "outputs_per_iteration")):
        if trained is None and iters is not None:
            raise ConfigError(f"family {cfg.model.family!r} has a fixed depth and no iterations; "
                              f"leave --iters out")
        if not getattr(model, "recurrent", False) and iters is not None and iters != trained:
            raise ConfigError(f"a {cfg.model.mode} {cfg.model.family} model runs exactly "
                              f"{trained} units; only recurrent models take --iters")
        return {"acc": accuracy(model, batches, **kw), "acc_per_iter": None, "note": None}
    if not per_iter:
        return {"acc": accuracy(model, batches, **kw), "acc_per_iter": None, "note": None}
    n, note = usable_iters(model, iters or trained)
    per = accuracy_per_iteration(model, batches, max_iters=n, **kw)
    return {"acc": per[min(n, trained) - 1], "acc_per_iter": per, "note": note}


__all__ = ["accuracy", "accuracy_per_iteration", "autocast", "count_correct", "evaluate",
           "loss_and_correct", "loss_terms", "prepare_input", "usable_iters", "wall_mask"]
