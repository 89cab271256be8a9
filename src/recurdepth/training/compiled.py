"""The training model as torch.compile sees it: compiled for the full batch, eager for the rest.

On a GPU the Figure 5 maze model at batch 50 is launch-bound (measured on an H200: ~13% of the bf16 peak):
``torch.compile(mode="reduce-overhead")`` replays its forward and backward as CUDA graphs, which
need static shapes. An epoch's batches all have the same shape but the last one (unless
``train.drop_last``), so that one runs eager through the same parameters instead of triggering a
recompilation and a second graph. The optimizer step and the loss stay eager and unchanged (the
objective is the step's business, not the capture's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


class StaticShapeModel(nn.Module):
    """``model`` called through ``compiled`` for inputs of the first shape it sees, eager otherwise.

    ``cudagraphs``: the compiled callable replays CUDA graphs, so each call starts a new step for
    them (``torch.compiler.cudagraph_mark_step_begin``): the previous step's outputs have been
    consumed by then.
    """

    def __init__(self, model: nn.Module, compiled: Callable[..., Any], *,
                 cudagraphs: bool = False) -> None:
        super().__init__()
        self.model = model  # the one set of parameters: the optimizer and clipping see these
        object.__setattr__(self, "_compiled", compiled)  # not a submodule: no duplicate parameters
        self.cudagraphs = cudagraphs
        self.static_shape: tuple[int, ...] | None = None
        self.calls = {"compiled": 0, "eager": 0}

    def forward(self, x: Tensor, *args: Any) -> Any:
        """The model's output for ``x``: compiled at the static shape, eager at any other."""
        if self.static_shape is None:
            self.static_shape = tuple(x.shape)
        if tuple(x.shape) != self.static_shape or args or not self.training:
            self.calls["eager"] += 1
            return self.model(x, *args)
        self.calls["compiled"] += 1
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled(x)


def compile_for_training(model: nn.Module, *, mode: str, device: str,
                         distributed: bool = False, backend: str = "inductor") -> StaticShapeModel:
    """``model`` compiled in ``mode`` for its full training batches (see :class:`StaticShapeModel`).

    CUDA graphs are used on CUDA only, and not under DDP, whose gradient all-reduce runs outside
    any graph: there the mode falls back to ``default``.
    """
    graphs = (torch.device(device).type == "cuda" and not distributed
              and mode in ("reduce-overhead", "max-autotune"))
    if not graphs:  # the same mode without its CUDA graphs
        mode = {"reduce-overhead": "default",
                "max-autotune": "max-autotune-no-cudagraphs"}.get(mode, mode)
    # A worker trains run after run in one process: without a reset, the ninth model compiled
    # there would exceed dynamo's recompilation limit and silently run eager.
    torch._dynamo.reset()
    if backend != "inductor":  # tests: a backend without code generation takes no mode
        compiled = torch.compile(model, backend=backend, dynamic=False)
    else:
        compiled = torch.compile(model, mode=mode, dynamic=False)
    return StaticShapeModel(model, compiled, cudagraphs=graphs)


__all__ = ["StaticShapeModel", "compile_for_training"]
