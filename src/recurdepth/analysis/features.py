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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

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
    states = model.states(x, resolve_iters(model, iters), include_stem=include_stem)
    if model.body[0].channels_last:  # token states (N, L, C): channels first like every conv
        states = [s.movedim(-1, 1) for s in states]
    return states


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



# -- run folders: what an analysis may read, on which images, and where it writes -------------

def check_analysable(run_dir: str | Path, analysis: str) -> None:
    """A one-line ConfigError when ``run_dir``'s model cannot give what ``analysis`` reads."""
    from recurdepth.models import get_family, list_models
    from recurdepth.models.unrolled import meta_build
    from recurdepth.training import rundir
    from recurdepth.training.run import make_model

    if not (Path(run_dir) / rundir.CONFIG_FILE).exists():
        return  # load_run says what is missing
    # The resolved config: the requested one may leave iters to effective_depth (``train``'s runs).
    cfg = rundir.read_config(Path(run_dir))
    model = meta_build(lambda: make_model(cfg))
    family = cfg.model.family
    if not isinstance(model, UnrolledNet):
        having = [f for f in list_models() if get_family(f).unrolled]
        raise ConfigError(f"{run_dir}: the {analysis} analysis reads the state after every "
                          f"iteration / block, which family {family!r} does not expose; "
                          f"analyse a run of family {', '.join(having)}")
    stem = model.stem if isinstance(model, UnrolledNet) else model
    if analysis in ("featviz", "rf") and not any(isinstance(m, nn.Conv2d) for m in stem.modules()):
        # Feature visualisation optimises an image; a receptive field is a region of one.
        raise ConfigError(f"{run_dir}: the {analysis} analysis needs a convolutional model; "
                          f"family {family!r} flattens its input")


def check_same_data(cfg_a: Any, cfg_b: Any, run_a: Any = "run A", run_b: Any = "run B") -> None:
    """A one-line ConfigError unless both runs read the same data set at the same image size."""
    from recurdepth.data.registry import get_dataset

    def key(cfg: Any) -> tuple[str, int | None]:
        return cfg.data.name, get_dataset(cfg.data.name).image_side(cfg.example_size())

    ka, kb = key(cfg_a), key(cfg_b)
    if ka != kb:
        raise ConfigError(f"{run_a} and {run_b} were trained on different data ({ka[0]}, "
                          f"{ka[1]} px vs {kb[0]}, {kb[1]} px); compare runs of the same data set "
                          f"and image size")


def analysis_data(cfg: Any, split: str, images: int | None, *, device: str = "cpu",
                  seed: int | None = None, flag: str = "--images",
                  default: int | None = None) -> tuple[Tensor, Tensor]:
    """``images`` preprocessed examples of ``split``: the first ones, or a random draw seeded by
    ``seed``. None takes ``default`` or all the split holds, whichever is fewer. ConfigError for
    0 or more than the split holds."""
    from recurdepth.training.data import eval_tensors

    if images is not None and images < 1:
        raise ConfigError(f"{flag} must be at least 1, got {images}")
    limit = images if images is not None else default
    x, y = eval_tensors(cfg, split, limit=None if seed is not None else limit, device=device)
    if images is None and default is not None:
        images = min(default, len(x))
    if images is not None and images > len(x):
        raise ConfigError(f"{flag} {images} is more than the {len(x)} {split} images of "
                          f"{cfg.data.name}; use {flag} {len(x)} or fewer")
    if seed is not None and images is not None:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:images]
        pick = pick.sort().values.to(x.device)
        x, y = x[pick], y[pick]
    return x, y


def analysis_dir(run_a: str | Path, analysis: str, run_b: str | Path | None = None) -> Path:
    """``RUN_A/analysis/<analysis>``, or ``.../<analysis>/<A>_vs_<B>`` when a second run is given."""
    base = Path(run_a) / "analysis" / analysis
    if run_b is None:
        return base
    return base / f"{Path(run_a).resolve().name}_vs_{Path(run_b).resolve().name}"
