"""The paper's Equation 1: ``head(body(stem(x)))`` with a recurrent or feed-forward body.

A *recurrent* model applies one unit ``iters`` times (the same parameters every time); its
*feed-forward twin* applies ``iters`` distinct copies of that unit. Effective depth, weight sharing,
per-iteration BatchNorm, "more iterations at test time" and "the state after every iteration" all
live here, so every family only says what its stem, unit and head are, and every analysis reads
per-iteration states from the model instead of hooking into a shared module (a module-keyed hook
only sees the last call of a module that is applied several times).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from recurdepth.errors import ConfigError
from recurdepth.models.spec import MODES

# Modules on a residual shortcut (1x1 projections) are not on the longest path: not counted.
_SHORTCUT_NAMES = ("shortcut", "downsample")


# The layers effective depth counts (paper §2): every convolution, of any dimension, and linear.
DEPTH_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class DepthLayer(nn.Module):
    """A module that effective depth counts as one layer, whatever linear layers it holds.

    Multi-head attention is one layer although its query, key, value and output projections are
    four linear layers, and a transformer's MLP is one layer (the count of looped-transformer
    papers: a block is attention + MLP, two layers).
    """


def count_layers(module: nn.Module) -> int:
    """Number of convolutions (1-D, 2-D, 3-D), linear layers and :class:`DepthLayer` modules
    (each one layer, its contents not counted) on the main path of ``module``."""
    total = 0
    whole: list[str] = []  # DepthLayer modules met so far: their submodules are not counted
    for name, sub in module.named_modules(remove_duplicate=False):
        if any(part in _SHORTCUT_NAMES for part in name.split(".")):
            continue
        if any(name.startswith(f"{w}.") if w else name for w in whole):
            continue
        if isinstance(sub, DepthLayer):
            whole.append(name)
            total += 1
        elif isinstance(sub, DEPTH_LAYERS):
            total += 1
    return total


class Unit(nn.Module):
    """A body unit. ``forward(h, slot, inp)``: ``slot`` picks per-iteration norm layers, if any.

    Units with per-iteration normalisation keep them in ``self.norms`` (an ``nn.ModuleList`` with
    one entry per slot); everything else in the unit is shared across iterations. A unit with
    ``recall = True`` also receives the model's raw input as ``inp`` at every iteration (Bansal
    et al. 2022's recall, ``cat([h, x], 1)``); other units are called as ``unit(h, slot)``.
    """

    recall: bool = False

    # Token models keep their state as (N, L, C); analyses read channels first (N, C, L).
    channels_last: bool = False

    def __init__(self) -> None:
        super().__init__()
        # An instance attribute (not a class one): nn.Module looks up registered submodules only
        # when normal attribute lookup fails, so a class-level None would shadow them.
        self.norms: nn.ModuleList | None = None

    @property
    def num_slots(self) -> int | None:
        """How many iterations this unit has norm layers for (None: unlimited)."""
        return None if self.norms is None else len(self.norms)

    def forward(self, h: Tensor, slot: int = 0,
                inp: Tensor | None = None) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class RecurDepthModel(nn.Module):
    """Base of every model in the zoo: knows its family, mode, data set, iters and depth."""

    family: str
    mode: str
    dataset: str
    iters: int | None

    @property
    def effective_depth(self) -> int:
        """Convolutions and linear layers on the unrolled input-to-output path."""
        raise NotImplementedError

    @property
    def num_parameters(self) -> int:
        """Number of distinct trainable parameters (shared weights counted once)."""
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary: family, mode, data set, effective depth, iters, parameters."""
        return {
            "family": self.family,
            "mode": self.mode,
            "dataset": self.dataset,
            "effective_depth": self.effective_depth,
            "iters": self.iters,
            "parameters": self.num_parameters,
        }


class UnrolledNet(RecurDepthModel):
    """``head ∘ body ∘ stem`` whose body is one shared unit (recurrent) or ``iters`` units."""

    def __init__(
        self,
        *,
        family: str,
        mode: str,
        dataset: str,
        iters: int,
        stem: nn.Module,
        make_unit: Callable[[int], Unit],
        head: nn.Module,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; valid choices: {', '.join(MODES)}")
        if iters < 1:
            raise ConfigError(f"iters must be >= 1, got {iters}")
        self.family, self.mode, self.dataset, self.iters = family, mode, dataset, iters
        self.stem = stem
        self.head = head
        self._make_unit = make_unit
        if mode == "recurrent":
            self.body = nn.ModuleList([make_unit(iters)])
        else:
            self.body = nn.ModuleList([make_unit(1) for _ in range(iters)])

    @property
    def recurrent(self) -> bool:
        """True when the body is one weight-shared unit."""
        return self.mode == "recurrent"

    @property
    def recall(self) -> bool:
        """True when the body unit(s) receive the model's input at every iteration."""
        return bool(self.body[0].recall)

    @property
    def max_iters(self) -> int | None:
        """Largest iteration count this model can run (None: any; BN-recurrent: its BN layers)."""
        if not self.recurrent:
            return self.iters
        return self.body[0].num_slots

    @property
    def layers_per_unit(self) -> int:
        """Convolutions and linear layers in one body unit."""
        return count_layers(self.body[0])

    def effective_depth_at(self, iters: int) -> int:
        """Effective depth when the body runs ``iters`` times."""
        return count_layers(self.stem) + iters * self.layers_per_unit + count_layers(self.head)

    @property
    def effective_depth(self) -> int:
        return self.effective_depth_at(self.iters)

    def check_iters(self, iters: int | None, first: int = 0) -> int:
        """Return the iteration count to run (``None``: the built one) or a ConfigError.

        ``first`` iterations have already run (a loop continued from a state): a feed-forward
        body runs its remaining blocks, a BN-recurrent one needs norm layers up to the last.
        """
        if first < 0:
            raise ConfigError(f"first must be >= 0, got {first}")
        if iters is None:
            return self.iters - first if not self.recurrent else self.iters
        if iters < 1:
            raise ConfigError(f"iters must be >= 1, got {iters}")
        if not self.recurrent and first + iters != self.iters:
            raise ConfigError(
                f"a feed-forward model has a fixed depth: it runs exactly {self.iters} units, "
                f"not {first + iters}; only recurrent models can run more or fewer iterations"
            )
        limit = self.max_iters
        if limit is not None and first + iters > limit:
            raise ConfigError(
                f"this recurrent model has per-iteration BatchNorm for {limit} iterations and "
                f"cannot run {first + iters}: there are no BatchNorm statistics for iteration "
                f"{limit + 1}. Evaluate at most {limit} iterations (or build the model with "
                f"iters={first + iters})."
            )
        return iters

    def iterate(self, x: Tensor, iters: int | None = None, *, include_stem: bool = False,
                start: Tensor | None = None, first: int = 0) -> Iterator[Tensor]:
        """Yield the body state after each iteration 1..iters (block i of a feed-forward model).

        The body starts from ``start`` when given (e.g. a state reached earlier; ``x`` still goes
        to recall units), else from ``stem(x)``. ``first``: how many iterations ``start`` has
        already had, so that the loop continues with iteration ``first + 1`` (its per-iteration
        norm layers; a feed-forward body's next block). With ``include_stem`` the starting
        state (the body's input) comes first.
        """
        n = self.check_iters(iters, first)
        if first and start is None:
            raise ConfigError("first > 0 continues a loop: give the state it reached as start")
        h = self.stem(x) if start is None else start
        if include_stem:
            yield h
        recall = self.recall
        for i in range(first, first + n):
            unit, slot = (self.body[0], i) if self.recurrent else (self.body[i], 0)
            h = unit(h, slot, inp=x) if recall else unit(h, slot)
            yield h

    def states(self, x: Tensor, iters: int | None = None, *, include_stem: bool = False,
               start: Tensor | None = None) -> list[Tensor]:
        """Return the body state after every iteration (preceded by the starting state if asked)."""
        return list(self.iterate(x, iters, include_stem=include_stem, start=start))

    def outputs_per_iteration(self, x: Tensor, iters: int | None = None, *,
                              start: Tensor | None = None) -> list[Tensor]:
        """Return the head's output after every iteration (the "think longer" curve)."""
        return [self.head(h) for h in self.iterate(x, iters, start=start)]

    def forward(self, x: Tensor, iters: int | None = None, *, start: Tensor | None = None,
                first: int = 0) -> Tensor:
        h = x if start is None else start
        for h in self.iterate(x, iters, start=start, first=first):
            pass
        return self.head(h)

    def feedforward_twin(self) -> UnrolledNet:
        """Return the feed-forward model whose unit k holds this recurrent model's weights.

        Unit k gets the shared weights and the per-iteration norm layers of iteration k, so the
        twin computes exactly the same function (paper §2: recurrence is depth-wise sharing). A
        recall model's twin has distinct units each with its own recall path (its own copy of
        the weights that read the input).
        """
        if not self.recurrent:
            raise ConfigError("feedforward_twin() needs a recurrent model")
        twin = UnrolledNet(
            family=self.family,
            mode="feedforward",
            dataset=self.dataset,
            iters=self.iters,
            stem=copy.deepcopy(self.stem),
            make_unit=self._make_unit,
            head=copy.deepcopy(self.head),
        )
        twin.to(next(self.parameters()).device)
        shared = self.body[0].state_dict()
        for k, unit in enumerate(twin.body):
            unit.load_state_dict(_slot_state(shared, k))
        return twin


def _slot_state(state: dict[str, Tensor], slot: int) -> dict[str, Tensor]:
    """The state dict of a one-slot unit: shared weights plus the norm layers of ``slot``."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("norms."):
            index, rest = key[len("norms.") :].split(".", 1)
            if int(index) == slot:
                out[f"norms.0.{rest}"] = value.clone()
        else:
            out[key] = value.clone()
    return out


def conv3x3(c_in: int, c_out: int, *, stride: int = 1, padding: int = 1, dilation: int = 1,
            bias: bool = False) -> nn.Conv2d:
    """A 3x3 convolution (every convolution in the paper's families is 3x3)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=padding, dilation=dilation, bias=bias)


def meta_build(fn: Callable[[], nn.Module]) -> nn.Module:
    """Build a module on the meta device: structure and parameter counts without memory."""
    with torch.device("meta"):
        return fn()
