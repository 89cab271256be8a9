"""Training objectives (``train.objective``): which outputs of the unrolled model one step's loss reads.

``final`` is the paper's loss: the task's loss on the output after the trained iterations.
``progressive`` is Bansal et al. 2022's progressive loss ("End-to-end algorithm synthesis with
recurrent networks", §3.2): run n ~ U{0..T-1} iterations without gradient, then k ~ U{1..T-n}
iterations with gradient from that (detached) state, and take the loss on the output after n+k;
the step minimises ``(1 - alpha) * loss(T iterations) + alpha * progressive``. It teaches a unit
to improve *any* state it is handed, which is what lets a recall network think longer than it was
trained. A new objective is a subclass of :class:`Objective` and one :func:`register_objective`.

A feed-forward twin has a fixed depth, so it cannot stop after n+k < T blocks: for it,
``progressive`` runs its first n blocks without gradient and the remaining T - n blocks with
gradient (k = T - n), so every block still learns to continue from the state it is given.

Under ``torch.compile`` (``runtime.compile``, on by default on CUDA) the iteration counts are
Python ints, so each (n, k) pair is a graph of its own until dynamo's cache limit sends the rest to
eager mode: not measured here (no GPU); ``runtime.compile=false`` avoids the recompiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # torch loads on first use, so config checks (check_objective) stay torch-free
    from torch import Tensor, nn

from recurdepth.data.tasks import Task
from recurdepth.errors import ConfigError, choices_message

# Salt of the objective's generator: its draws must not repeat the data order's, which derives
# from the same (seed, epoch).
_SALT = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class LossTerm:
    """One term of a step's loss: ``weight * total / denom`` (``total``: this process's summed
    loss, ``denom``: its normaliser), and the logits it was computed from."""

    weight: float
    total: Tensor
    denom: Tensor
    logits: Tensor


class Objective:
    """The loss one training step minimises; subclasses set ``name`` and ``terms``."""

    name: ClassVar[str]
    # False when some parameters may get no gradient in a step (a DDP wrapper must look for them).
    uses_every_parameter: ClassVar[bool] = True

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = float(alpha)

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Reseed the objective's randomness from ``(seed, epoch)`` (a resumed run draws the same)."""

    def terms(self, model: nn.Module, x: Tensor, y: Tensor, task: Task) -> Iterator[LossTerm]:
        """Forward ``x`` through ``model`` and yield the loss terms of the batch, one at a time.

        The caller runs each term's backward pass before asking for the next: a DDP model then
        sees one forward per backward, and the graphs are freed one by one.
        """
        raise NotImplementedError

    def loss(self, model: nn.Module, x: Tensor, y: Tensor, task: Task) -> Tensor:
        """The step's whole loss on one process (the weighted sum of its terms' means)."""
        return sum(t.weight * t.total / t.denom.clamp_min(1) for t in self.terms(model, x, y, task))


OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator adding an objective under ``cls.name`` (ValueError if the name is taken)."""
    if cls.name in OBJECTIVES:
        raise ValueError(f"objective {cls.name!r} is already registered")
    OBJECTIVES[cls.name] = cls
    return cls


def check_objective(name: str, alpha: float) -> None:
    """ConfigError for an unknown ``train.objective`` or a ``train.alpha`` it does not use."""
    if name not in OBJECTIVES:
        raise ConfigError(choices_message("training objective (train.objective)", name,
                                          sorted(OBJECTIVES)))
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"train.alpha must be in [0, 1] (0: only the loss after the trained "
                          f"iterations, 1: only the progressive loss), got {alpha:g}")


def make_objective(name: str, alpha: float = 1.0) -> Objective:
    """The objective called ``name`` with weight ``alpha`` (ConfigError listing the objectives)."""
    check_objective(name, alpha)
    return OBJECTIVES[name](alpha)


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DDP or ``torch.compile`` wrapper (itself when not wrapped)."""
    from torch import nn
    for attr in ("_orig_mod", "module"):
        while hasattr(model, attr) and isinstance(getattr(model, attr), nn.Module):
            model = getattr(model, attr)
    return model


@register_objective
class Final(Objective):
    """The paper's loss: the task's loss on the output after the trained iterations."""

    name = "final"

    def terms(self, model: nn.Module, x: Tensor, y: Tensor, task: Task) -> Iterator[LossTerm]:
        logits = model(x)
        yield LossTerm(1.0, *task.loss_terms(logits, y, x), logits)


@register_objective
class Progressive(Objective):
    """Bansal et al. 2022's progressive loss, weighted with the final loss by ``alpha``."""

    name = "progressive"
    uses_every_parameter = False  # with n > 0 the stem gets no gradient from the progressive term

    def __init__(self, alpha: float = 1.0) -> None:
        import torch

        super().__init__(alpha)
        self.generator = torch.Generator().manual_seed(_SALT)

    def set_epoch(self, seed: int, epoch: int) -> None:
        from recurdepth.data.augment import epoch_seed

        self.generator.manual_seed(epoch_seed(seed, epoch) ^ _SALT)

    def draw(self, iters: int, recurrent: bool) -> tuple[int, int]:
        """``(n, k)``: iterations without and with gradient (feed-forward: ``k = T - n``)."""
        import torch

        n = int(torch.randint(0, iters, (), generator=self.generator))
        k = int(torch.randint(1, iters - n + 1, (), generator=self.generator))
        return (n, k) if recurrent else (n, iters - n)

    def terms(self, model: nn.Module, x: Tensor, y: Tensor, task: Task) -> Iterator[LossTerm]:
        import torch

        net = unwrapped(model)
        iters = getattr(net, "iters", None)
        if not hasattr(net, "iterate") or iters is None:
            raise ConfigError(f"train.objective=progressive needs a model with iterations; "
                              f"family {getattr(net, 'family', '?')!r} has a fixed depth "
                              f"(use train.objective=final)")
        n, k = self.draw(iters, net.recurrent)  # drawn first: the same draws for every alpha
        if self.alpha < 1.0:
            logits = model(x)
            yield LossTerm(1.0 - self.alpha, *task.loss_terms(logits, y, x), logits)
        if self.alpha > 0.0:
            start = None
            if n > 0:
                with torch.no_grad():
                    # The first n states of the ordinary loop (a feed-forward body's first n
                    # blocks); detached, so no gradient reaches the stem or those iterations.
                    (start,) = itertools.islice(net.iterate(x, iters), n - 1, n)
                start = start.detach()
            out = model(x, k, start=start, first=n)
            yield LossTerm(self.alpha, *task.loss_terms(out, y, x), out)


__all__ = ["OBJECTIVES", "Final", "LossTerm", "Objective", "Progressive", "check_objective",
           "make_objective", "register_objective", "unwrapped"]
