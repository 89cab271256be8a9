"""One training epoch: forward, loss, backward, step, with a progress bar and a divergence check."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm import tqdm

from recurdepth.training.evaluate import prepare_input, autocast, loss_and_correct

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


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    is_maze: bool,
    amp: str = "off",
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "train",
) -> EpochStats:
    """Train ``model`` for one pass over ``batches``; stop at the first non-finite loss."""
    model.train()
    on_cpu = True
    loss_sum: Tensor | float = 0.0
    correct: Tensor | int = 0
    samples = 0
    start = time.perf_counter()
    finite = True
    losses: list[Tensor] = []
    # disable=None: no bar when stderr is not a terminal (no control codes in log files).
    bar = tqdm(total=len(batches) if hasattr(batches, "__len__") else None, desc=desc,
               disable=None if progress else True, leave=False, dynamic_ncols=True, unit="batch")
    try:
        for step, (x, y) in enumerate(batches):
            on_cpu = x.device.type == "cpu"
            x = prepare_input(x, channels_last)
            with autocast(x.device, amp):
                logits = model(x)
            loss, n_correct = loss_and_correct(logits, y, x, is_maze=is_maze)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()
                if clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
            losses.append(loss.detach())
            loss_sum = loss_sum + loss.detach() * len(y)
            correct = correct + n_correct
            samples += len(y)
            bar.update(1)
            if on_cpu or (step + 1) % SYNC_EVERY == 0:
                # A NaN/inf loss stops the run here: nothing after it would mean anything.
                if not math.isfinite(float(loss.detach())):
                    finite = False
                    break
                if progress and (step + 1) % 5 == 0:
                    elapsed = time.perf_counter() - start
                    bar.set_postfix(loss=f"{float(loss_sum) / samples:.4f}",
                                    acc=f"{100.0 * int(correct) / samples:.1f}",
                                    img_s=f"{samples / max(elapsed, 1e-9):.0f}", refresh=False)
        if finite and samples and not math.isfinite(float(loss_sum)):
            finite = False
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return EpochStats(loss=float(loss_sum) / max(samples, 1),
                      running_acc=100.0 * int(correct) / max(samples, 1),
                      samples=samples, seconds=seconds, finite=finite,
                      # One device-to-host copy per epoch, not one sync per step.
                      step_losses=torch.stack(losses).float().cpu().tolist() if losses else [])


__all__ = ["EpochStats", "train_epoch"]
