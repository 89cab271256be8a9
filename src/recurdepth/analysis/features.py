"""Per-iteration feature capture from a model's own ``iterate`` (never from module-keyed hooks).

A forward hook on a weight-shared module fires once per iteration and a hook that stores "the
output of this module" keeps only the last call, so every analysis here reads the body state after
each iteration from :meth:`UnrolledNet.iterate`. Iteration ``i`` of a recurrent model is paired
with block ``i`` of its feed-forward twin: both are the state after ``i`` body units, at the same
effective depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from recurdepth.errors import ConfigError
from recurdepth.models import UnrolledNet, count_layers


@dataclass(frozen=True)
class Layer:
    """One captured layer: ``index`` 0 is the stem output, ``index`` i the state after unit i."""

    index: int
    name: str
    effective_depth: int


def require_unrolled(model: object) -> UnrolledNet:
    """Return ``model`` if it is a stem/body/head model, else a ConfigError saying why."""
    if not isinstance(model, UnrolledNet):
        family = getattr(model, "family", type(model).__name__)
        raise ConfigError(f"this analysis needs a model with a body of iterations (stem, body, "
                          f"head); {family!r} has none. Use a family such as maze, convnet, "
                          f"mlp, residual or residual_bn.")
    return model


def resolve_iters(model: UnrolledNet, iters: int | None) -> int:
    """The number of iterations to analyse: ``iters`` or the model's trained iteration count."""
    n = model.iters if iters is None else int(iters)
    model.check_iters(n)  # one place validates iteration counts: the model itself
    return n


def layers(model: UnrolledNet, iters: int | None = None, *, include_stem: bool = True) -> list[Layer]:
    """The captured layers of ``model``: optionally the stem output, then every iteration/block."""
    n = resolve_iters(model, iters)
    word = "iter" if model.recurrent else "block"
    stem_depth = count_layers(model.stem)
    out = [Layer(0, "stem", stem_depth)] if include_stem else []
    out += [Layer(i, f"{word} {i}", stem_depth + i * model.layers_per_unit) for i in range(1, n + 1)]
    return out


@torch.no_grad()
def capture(model: UnrolledNet, x: Tensor, iters: int | None = None, *,
            include_stem: bool = True) -> list[Tensor]:
    """Return [stem output,] state after iteration 1, ..., state after iteration ``iters``."""
    return model.states(x, resolve_iters(model, iters), include_stem=include_stem)


def batched(inputs: Tensor, batch_size: int, device: str | torch.device = "cpu",
            ) -> Iterator[Tensor]:
    """Yield consecutive batches of ``inputs`` moved to ``device``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, len(inputs), batch_size):
        yield inputs[start:start + batch_size].to(device, non_blocking=True)


def feature_batches(model: UnrolledNet, inputs: Tensor, *, batch_size: int = 100,
                    iters: int | None = None, include_stem: bool = True,
                    transform: Callable[[Tensor], Tensor] | None = None,
                    device: str | torch.device = "cpu") -> Iterator[list[Tensor]]:
    """Stream the captured layers of ``model`` over ``inputs`` batch by batch (eval mode).

    ``transform`` (e.g. pooling) is applied to every layer's features on the device, so only
    the transformed features are ever held.
    """
    model.eval()
    for x in batched(inputs, batch_size, device):
        feats = capture(model, x, iters, include_stem=include_stem)
        yield [transform(f) if transform else f for f in feats]

