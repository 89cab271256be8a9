"""The authors' optimizers and schedules (SPEC §3), and AdamW with cosine decay for transformers.

SGD with momentum or Adam, weight decay on all parameters, multi-step decay and a 5-epoch
exponential warm-up. On mazes the learning rate of the shared recurrent unit is divided by the
number of iterations (its gradient is the sum of ``iters`` contributions). The learning rate is a
pure function of the epoch (``warmup_cosine``: of the epoch and the step in it), so a resumed run
continues the schedule exactly where it stopped.

``warmup_cosine`` is the usual transformer schedule, set before every optimisation step rather
than once per epoch: the learning rate rises linearly over the first ``warmup_epochs`` epochs'
steps, then follows a cosine to 0 at the end of ``cosine_epochs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from recurdepth.errors import ConfigError, choices_message
from recurdepth.training.config import OPTIMIZERS, OptimConfig


def warmup_factor(epoch: int, warmup_epochs: int) -> float:
    """Exponential warm-up multiplier of ``epoch`` (0-based): ``1 - exp(-(e+1)/W)``, then 1.

    With W = 5 this gives 0.18, 0.33, 0.45, 0.55 and 1.0 from the fifth epoch on (SPEC §3).
    """
    if warmup_epochs <= 0 or epoch + 1 >= warmup_epochs:
        return 1.0
    return 1.0 - math.exp(-(epoch + 1) / warmup_epochs)


def warmup_warning(cfg: OptimConfig, epochs: int) -> str | None:
    """A one-line warning when the authors' exponential warm-up takes more than a quarter of a
    run, else None (``warmup_cosine``'s linear per-step warm-up is asked for by name)."""
    w = cfg.warmup()
    if w <= epochs / 4 or per_step(cfg):
        return None
    return (f"warning: the {w}-epoch warm-up (optim.warmup_epochs, the authors' SGD protocol) "
            f"covers {min(w - 1, epochs)} of this run's {epochs} epochs: epoch 1 trains at "
            f"{warmup_factor(0, w):.0%} of optim.lr; for a short run set optim.warmup_epochs=0 "
            f"(or at most train.epochs/4)")


def decay_factor(epoch: int, milestones: Sequence[int], gamma: float) -> float:
    """Multi-step decay: ``gamma`` to the number of milestones reached by ``epoch`` (0-based)."""
    return gamma ** sum(1 for m in milestones if epoch >= m)


def cosine_factor(epoch: int, epochs: int) -> float:
    """Cosine decay from 1 at epoch 0 towards 0 at ``epochs``: ``(1 + cos(pi·e/E)) / 2``."""
    return 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))


def per_step(cfg: OptimConfig) -> bool:
    """True when ``cfg``'s schedule changes the learning rate within an epoch (every step)."""
    return cfg.schedule == "warmup_cosine"


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up ``(s+1)/W`` for steps ``s < W``, then ``(1 + cos(pi·(s-W)/(T-W))) / 2``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))


def lr_factor(epoch: int, cfg: OptimConfig, step: int = 0, steps: int = 1) -> float:
    """The learning-rate multiplier of ``epoch``: warm-up times the decay of ``cfg.schedule``.

    ``step`` of ``steps`` per epoch matters for ``warmup_cosine`` only (the others are constant
    over an epoch).
    """
    if per_step(cfg):
        if cfg.cosine_epochs is None:
            raise ConfigError("optim.schedule=warmup_cosine needs optim.cosine_epochs (resolve() "
                              "fills it from train.epochs)")
        if steps < 1 or not 0 <= step < steps:
            raise ValueError(f"step {step} is not a step of an epoch of {steps} steps")
        return warmup_cosine_factor(epoch * steps + step, cfg.warmup() * steps,
                                    cfg.cosine_epochs * steps)
    if cfg.schedule == "cosine":
        if cfg.cosine_epochs is None:
            raise ConfigError("optim.schedule=cosine needs optim.cosine_epochs (resolve() fills "
                              "it from train.epochs)")
        decay = cosine_factor(epoch, cfg.cosine_epochs)
    else:
        decay = decay_factor(epoch, cfg.milestones, cfg.gamma)
    return warmup_factor(epoch, cfg.warmup()) * decay


def param_groups(model: nn.Module, cfg: OptimConfig, *, divide_recurrent: bool) -> list[dict]:
    """Parameter groups with a ``base_lr`` each; the shared unit gets ``lr / iters`` if asked."""
    recurrent = bool(getattr(model, "recurrent", False)) and hasattr(model, "body")
    if not (divide_recurrent and recurrent):
        return [{"params": [p for p in model.parameters() if p.requires_grad], "base_lr": cfg.lr,
                 "name": "all"}]
    body = {id(p) for p in model.body.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in body]
    shared = [p for p in model.body.parameters() if p.requires_grad]
    return [
        {"params": rest, "base_lr": cfg.lr, "name": "stem_head"},
        {"params": shared, "base_lr": cfg.lr / model.iters, "name": "recurrent"},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig, *, divide_recurrent: bool) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or Adam (weight decay) over :func:`param_groups`."""
    groups = param_groups(model, cfg, divide_recurrent=divide_recurrent)
    for g in groups:
        g["lr"] = g["base_lr"] * lr_factor(0, cfg)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019), transformers
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(choices_message("optimizer (optim.name)", cfg.name, OPTIMIZERS))


def set_epoch_lr(optimizer: torch.optim.Optimizer, epoch: int, cfg: OptimConfig,
                 step: int = 0, steps: int = 1) -> float:
    """Set every group's lr for ``epoch`` (and ``step`` of ``steps``) from its ``base_lr``;
    return the multiplier."""
    factor = lr_factor(epoch, cfg, step, steps)
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
    return factor


__all__ = ["build_optimizer", "cosine_factor", "decay_factor", "lr_factor", "param_groups",
           "per_step", "set_epoch_lr", "warmup_cosine_factor", "warmup_factor", "warmup_warning"]
