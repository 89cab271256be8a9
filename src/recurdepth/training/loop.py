"""One training epoch: forward, loss, backward, step, with a progress bar and a divergence check.

In a run of several processes (:mod:`recurdepth.training.distributed`) each process trains on its
slice of every global batch, and the epoch's figures are summed over processes at its end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm import tqdm

from recurdepth.data.tasks import Task
from recurdepth.progress import bar_disable
from recurdepth.training.distributed import SINGLE, Dist
from recurdepth.training.evaluate import autocast, count_correct, prepare_input
from recurdepth.training.objectives import Final, Objective

# How often (in steps) the loss is read back to the host on a GPU: every read is a sync.
SYNC_EVERY = 20


@dataclass
class EpochStats:
    """What one epoch of training measured (accuracy through augmentation: a running figure)."""

    loss: float
    running_acc: float
    samples: int
    seconds: float
    finite: bool
    step_losses: list[float] = field(default_factory=list)  # the loss of every step, in order

    @property
    def images_per_s(self) -> float:
        """Training throughput of the epoch."""
        return self.samples / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class StepOptions:
    """How each step computes and applies its update."""

    task: Task  # the loss and correct-count rules of the data set's task
    amp: str = "off"
    scaler: torch.amp.GradScaler | None = None
    clip_grad_norm: float | None = None
    channels_last: bool = False
    dist: Dist = SINGLE
    presharded: bool = False  # the batches are already this process's slice (ImageNet sampler)
    objective: Objective = field(default_factory=Final)  # train.objective: what the loss reads


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    task: Task,
    amp: str = "off",
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "train",
    dist: Dist = SINGLE,
    objective: Objective | None = None,
    before_step: Callable[[int], None] | None = None,
) -> EpochStats:
    """Train ``model`` for one pass over ``batches``; stop at the first non-finite loss.

    ``objective``: the training objective (None: ``final``, the paper's loss); ``before_step(i)``
    runs before the epoch's step ``i`` (a per-step learning rate)."""
    opts = StepOptions(task=task, amp=amp, scaler=scaler, clip_grad_norm=clip_grad_norm,
                       channels_last=channels_last, dist=dist,
                       presharded=bool(getattr(batches, "presharded", False)),
                       objective=objective or Final())
    model.train()
    loss_sum: Tensor | float = 0.0
    correct: Tensor | int = 0
    samples, start = 0, time.perf_counter()
    finite = True
    losses: list[Tensor] = []
    bar = tqdm(total=len(batches) if hasattr(batches, "__len__") else None, desc=desc,
               disable=bar_disable(progress), leave=False, dynamic_ncols=True, unit="batch")
    try:
        for step, (x, y) in enumerate(batches):
            if before_step is not None:
                before_step(step)
            loss, n_correct, n = train_step(model, x, y, optimizer, opts)
            losses.append(loss)
            loss_sum = loss_sum + loss * n
            correct = correct + n_correct
            samples += n
            bar.update(1)
            if x.device.type == "cpu" or (step + 1) % SYNC_EVERY == 0:
                # A NaN/inf loss stops the run here: nothing after it would mean anything. The
                # epoch's sum is checked, so a bad step between two reads is caught too (on a GPU
                # at most SYNC_EVERY steps late: the only host syncs of the epoch).
                if not _all_finite(loss_sum, dist):
                    finite = False
                    break
                if progress and (step + 1) % 5 == 0:
                    _show(bar, loss_sum, correct, samples, start, dist)
        loss_sum, correct = dist.all_sum(torch.as_tensor(loss_sum)), dist.all_sum(torch.as_tensor(correct))
        if finite and samples and not math.isfinite(float(loss_sum)):
            finite = False
    finally:
        bar.close()
    return EpochStats(loss=float(loss_sum) / max(samples, 1),
                      running_acc=100.0 * int(correct) / max(samples, 1),
                      samples=samples, seconds=time.perf_counter() - start, finite=finite,
                      step_losses=_step_losses(losses, dist))


def _step_losses(losses: list[Tensor], dist: Dist) -> list[float]:
    """The global-batch loss of every step: one device-to-host copy per epoch, not one per step."""
    if not losses:
        return []
    # Each process holds its share of every step's mean loss; their sum is the global loss.
    return dist.all_sum(torch.stack(losses).float()).cpu().tolist()


def train_step(model: nn.Module, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer,
               opts: StepOptions) -> tuple[Tensor, Tensor, int]:
    """One update on a global batch: (this process's share of its mean loss, its correct count,
    the global batch size)."""
    dist = opts.dist
    n = len(y) * (dist.world_size if opts.presharded else 1)
    if not opts.presharded:
        x, y = dist.shard(x, y)
    x = prepare_input(x, opts.channels_last)
    optimizer.zero_grad(set_to_none=True)
    share: Tensor | None = None
    n_correct: Tensor | None = None
    terms = opts.objective.terms(model, x, y, opts.task)
    while True:  # each term's forward, then its backward (one DDP forward per backward)
        with autocast(x.device, opts.amp):
            term = next(terms, None)
        if term is None:
            break
        if n_correct is None:  # the running accuracy counts the first term's logits
            n_correct = count_correct(term.logits, y, x, task=opts.task)
        total = term.total if term.weight == 1.0 else term.weight * term.total
        if dist.enabled:
            # x world size: DDP averages gradients over processes, this makes it a global-batch mean.
            loss = total / dist.all_sum(term.denom).clamp_min(1) * dist.world_size
            part = loss.detach() / dist.world_size
        else:
            loss = total / term.denom.clamp_min(1)
            part = loss.detach()
        share = part if share is None else share + part
        _backward(loss, opts)
    _step(model, optimizer, opts)
    return share, n_correct, n


def _backward(loss: Tensor, opts: StepOptions) -> None:
    scaler = opts.scaler
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
    else:
        loss.backward()


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, opts: StepOptions) -> None:
    scaler = opts.scaler
    if scaler is not None and scaler.is_enabled():
        if opts.clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        return
    if opts.clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), opts.clip_grad_norm)
    optimizer.step()


def _all_finite(loss: Tensor, dist: Dist) -> bool:
    """True when ``loss`` is finite on every process (all stop together, or none)."""
    bad = torch.tensor(0.0 if math.isfinite(float(loss)) else 1.0)
    return float(dist.all_sum(bad)) == 0.0


def _show(bar: tqdm, loss_sum: Tensor | float, correct: Tensor | int, samples: int,
          start: float, dist: Dist) -> None:
    elapsed = time.perf_counter() - start
    scale = dist.world_size  # figures of this process's slices, scaled to the global batch
    bar.set_postfix(loss=f"{float(loss_sum) * scale / samples:.4f}",
                    acc=f"{100.0 * int(correct) * scale / samples:.1f}",
                    img_s=f"{samples / max(elapsed, 1e-9):.0f}", refresh=False)


__all__ = ["EpochStats", "StepOptions", "train_epoch", "train_step"]
