"""Feature visualisation by activation maximisation (paper §5.2, appendix A.6, Figures 7, 8).

A batch of images is optimised so that image i maximises the ℓ2 norm of filter ``filters[i]`` at
one layer (the stem output or the body state after iteration / block i), with

* pixel jitter: a random shift of up to ±``jitter`` px per axis with wrap-around (``torch.roll``);
* anisotropic total variation in 4 directions (horizontal, vertical, both diagonals), ℓ2;
* a BatchNorm-statistics prior (Yin et al. 2020) on "the batch statistics from the first
  convolutional layer" (A.6): ‖batch mean − running mean‖₂ + ‖batch var − running var‖₂ of the
  input of the model's first BatchNorm layer (the first convolution's output), once per forward
  pass; ``bn_prior="all"`` instead sums it over every call of every BatchNorm layer on the way
  (Yin et al.'s DeepInversion). Models without BatchNorm have no prior;
* Adam with cosine annealing from lr 0.01;
* loss weights: λtv = λbn = 0 at the first layer, growing linearly with depth to the preset's
  values at the deepest body layer (CIFAR-10: λtv = 1, λbn = 10; ImageNet: 5, 50). The paper
  gives λmain only for the deepest layer (0.64 CIFAR-10, 0.01 ImageNet) and says only λtv and
  λbn change with depth, so we keep λmain at that value at every layer (``lambda_main_first``
  sets another value at the first layer, interpolated linearly);
* the main objective summed over the batch, as A.6 writes it: Σ_i ‖a_{l,i}(x_i)‖₂ for CIFAR-10,
  and for ImageNet the contrastive Σ_i (n‖a_{l,i}(x_i)‖₂ − Σ_j ‖a_{l,i}(x_j)‖₂).

The model's ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn

from recurdepth.analysis.features import Layer, layers, require_unrolled
from recurdepth.errors import ConfigError, choices_message
from recurdepth.models import UnrolledNet, count_layers


@dataclass(frozen=True)
class FeatVizConfig:
    """Optimisation settings; the λ are the deepest layer's weights (scaled down with depth)."""

    steps: int = 1000
    batch: int = 64
    lr: float = 0.01
    jitter: int = 32
    lambda_main: float = 0.64
    lambda_tv: float = 1.0
    lambda_bn: float = 10.0
    lambda_main_first: float | None = None  # None: lambda_main at every layer
    contrastive: bool = False
    bn_prior: str = "first"  # "first": the first BatchNorm layer's input (A.6); "all": every call
    seed: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


# Appendix A.6: CIFAR-10 batch 64 at 32x32, ImageNet batch 32 at 224x224, 1000 steps each.
PRESETS: dict[str, FeatVizConfig] = {
    "paper-cifar10": FeatVizConfig(),
    "paper-imagenet": FeatVizConfig(batch=32, lambda_main=0.01, lambda_tv=5.0, lambda_bn=50.0,
                                    contrastive=True),
    "quick": FeatVizConfig(steps=100, batch=8),
}


def preset(name: str, dataset: str | None = None) -> FeatVizConfig:
    """A named setting; ``paper`` picks the ImageNet or CIFAR-10 setting by ``dataset``."""
    if name == "paper":
        name = "paper-imagenet" if dataset == "imagenet" else "paper-cifar10"
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(choices_message("feature-visualisation preset", name,
                                          ["paper", *PRESETS])) from None


def loss_weights(cfg: FeatVizConfig, position: float) -> tuple[float, float, float]:
    """(λmain, λtv, λbn) at relative depth ``position`` ∈ [0, 1] (0: first layer)."""
    if not 0.0 <= position <= 1.0:
        raise ConfigError(f"relative depth must be in [0, 1], got {position}")
    first = cfg.lambda_main if cfg.lambda_main_first is None else cfg.lambda_main_first
    main = first + position * (cfg.lambda_main - first)
    return main, position * cfg.lambda_tv, position * cfg.lambda_bn


def relative_depth(model: UnrolledNet, layer: Layer) -> float:
    """Position of ``layer`` between the first layer (0) and the deepest body state (1)."""
    last = model.effective_depth_at(model.iters) - count_layers(model.head)
    return 0.0 if last <= 1 else min(1.0, (layer.effective_depth - 1) / (last - 1))


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic ℓ2 total variation in 4 directions (Yin et al. 2020)."""
    diffs = (
        x[..., :, :-1] - x[..., :, 1:],
        x[..., :-1, :] - x[..., 1:, :],
        x[..., 1:, :-1] - x[..., :-1, 1:],
        x[..., :-1, :-1] - x[..., 1:, 1:],
    )
    return sum(torch.linalg.vector_norm(d) for d in diffs)


def jitter(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift ``x`` by up to ±``max_shift`` px per axis; pixels leaving one side re-enter opposite."""
    if max_shift <= 0:
        return x
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


BN_PRIORS = ("first", "all")


class BatchNormPrior:
    """Records the input statistics of BatchNorm layers of a model during forward passes.

    ``scope="first"``: only the model's first BatchNorm layer (module order: the stem's comes
    first), first call per :meth:`loss` (A.6). ``"all"``: a hook per module appends one entry per
    call, so a BatchNorm layer applied on several iterations contributes once per iteration.
    """

    def __init__(self, model: nn.Module, scope: str = "first") -> None:
        if scope not in BN_PRIORS:
            raise ConfigError(choices_message("BatchNorm prior", scope, BN_PRIORS))
        self.scope = scope
        self.calls: list[tuple[nn.modules.batchnorm._BatchNorm, Tensor, Tensor]] = []
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if scope == "first":
            norms = norms[:1]
        self._handles = [m.register_forward_pre_hook(self._record) for m in norms]

    def _record(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        if self.scope == "first" and self.calls:
            return
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        self.calls.append((module, x.mean(dims), x.var(dims, unbiased=False)))

    def loss(self) -> Tensor:
        """Σ over recorded calls of ‖μ − running mean‖₂ + ‖σ² − running var‖₂; then forget them."""
        total = sum((torch.linalg.vector_norm(mean - m.running_mean)
                     + torch.linalg.vector_norm(var - m.running_var))
                    for m, mean, var in self.calls)
        self.calls = []
        return total if isinstance(total, Tensor) else torch.tensor(0.0)

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()


def layer_state(model: UnrolledNet, x: Tensor, index: int) -> Tensor:
    """The stem output (``index`` 0) or the state after iteration / block ``index``.

    Iterations after ``index`` are not run (so no BatchNorm layer beyond it is called).
    """
    if index == 0:
        return model.stem(x)
    iters = index if model.recurrent else None
    for i, h in enumerate(model.iterate(x, iters), start=1):
        if i == index:
            return h
    raise ConfigError(f"layer {index} does not exist: the model has {model.iters} blocks")


def filter_norms(state: Tensor, filters: Sequence[int]) -> Tensor:
    """A[i, j] = ‖activation of filter ``filters[i]`` on image j‖₂ (over space)."""
    flat = state.reshape(state.shape[0], state.shape[1], -1)
    return torch.linalg.vector_norm(flat[:, list(filters)], dim=2).T


@dataclass
class Visualisation:
    """Optimised images in [0, 1] (n, C, H, W) and the loss terms at the last step."""

    layer: str
    filters: list[int]
    images: Tensor
    weights: tuple[float, float, float]
    final: dict[str, float]
    # The objective maximised (λmain·main − λtv·tv − λbn·bn) and its main term, on the images
    # without jitter, before and after the optimisation.
    start: dict[str, float] | None = None
    end: dict[str, float] | None = None


def visualize(model: nn.Module, layer_index: int, filters: Sequence[int], cfg: FeatVizConfig, *,
              image_size: int, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None, device: str | torch.device = "cpu",
              progress: bool = False) -> Visualisation:
    """Optimise one image per entry of ``filters`` to excite that filter at ``layer_index``."""
    net = require_unrolled(model).to(device).eval()
    flags = [p.requires_grad for p in net.parameters()]
    try:
        for p in net.parameters():
            p.requires_grad_(False)
        return _optimise(net, layer_index, filters, cfg, image_size=image_size, mean=mean,
                         std=std, device=device, progress=progress)
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def _objective(net: UnrolledNet, x: Tensor, layer_index: int, filters: Sequence[int],
               cfg: FeatVizConfig, weights: tuple[float, float, float],
               prior: BatchNormPrior) -> dict[str, Tensor]:
    """The loss terms on images ``x`` (main summed over the batch, A.6)."""
    state = layer_state(net, x, layer_index)
    if max(filters) >= state.shape[1] or min(filters) < 0:
        raise ConfigError(f"filters must be in 0..{state.shape[1] - 1} at layer {layer_index}")
    norms = filter_norms(state, filters)
    own = norms.diagonal()
    n = len(filters)
    main = (n * own - norms.sum(1)).sum() if cfg.contrastive else own.sum()
    tv = total_variation(x)
    bn = prior.loss()
    w_main, w_tv, w_bn = weights
    loss = -w_main * main + w_tv * tv + w_bn * bn
    return {"main": main, "tv": tv, "bn": bn, "loss": loss}


def _floats(terms: dict[str, Tensor]) -> dict[str, float]:
    out = {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in terms.items()}
    out["objective"] = -out["loss"]
    return out


def _optimise(net: UnrolledNet, layer_index: int, filters: Sequence[int], cfg: FeatVizConfig, *,
              image_size: int, mean: Sequence[float] | None, std: Sequence[float] | None,
              device: str | torch.device, progress: bool) -> Visualisation:
    from tqdm import tqdm

    from recurdepth.progress import bar_disable

    layer = layer_at(net, layer_index)
    first_conv = next((m for m in net.stem.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is None:
        raise ConfigError(f"feature visualisation needs a convolutional model, not "
                          f"{net.family!r}")
    in_channels = first_conv.in_channels
    n = len(filters)
    if n < 1:
        raise ConfigError("give at least one filter to visualise")
    if cfg.steps < 1:
        raise ConfigError(f"feature visualisation needs at least 1 step, got {cfg.steps}")
    g = torch.Generator().manual_seed(cfg.seed)
    m = torch.tensor(mean or [0.0] * in_channels, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std or [1.0] * in_channels, device=device).view(1, -1, 1, 1)
    lo, hi = (0 - m) / s, (1 - m) / s  # the valid pixel range in the model's input space
    x = (torch.randn(n, in_channels, image_size, image_size, generator=g) * 0.2).to(device)
    x = (x + (lo + hi) / 2).clamp(lo, hi).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.steps))
    weights = loss_weights(cfg, relative_depth(net, layer))
    prior = BatchNormPrior(net, cfg.bn_prior)
    terms: dict[str, float] = {}
    try:
        with torch.no_grad():
            start = _floats(_objective(net, x, layer_index, filters, cfg, weights, prior))
        for _ in tqdm(range(cfg.steps), desc=f"featviz {layer.name}", disable=bar_disable(progress)):
            opt.zero_grad(set_to_none=True)
            step = _objective(net, jitter(x, cfg.jitter, g), layer_index, filters, cfg,
                              weights, prior)
            step["loss"].backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                x.clamp_(lo, hi)
            terms = _floats(step)
        with torch.no_grad():
            end = _floats(_objective(net, x, layer_index, filters, cfg, weights, prior))
    finally:
        prior.close()
    images = (x.detach() * s + m).clamp(0, 1).cpu()
    return Visualisation(layer=layer.name, filters=list(filters), images=images,
                         weights=weights, final=terms or end, start=start, end=end)


def layer_at(model: UnrolledNet, index: int) -> Layer:
    """Layer ``index`` (0 = stem) of ``model``; recurrent models go past their trained iterations."""
    available = layers(model, max(index, model.iters) if model.recurrent else None)
    for layer in available:
        if layer.index == index:
            return layer
    more = " or more (iterations past the trained ones)" if model.recurrent else ""
    raise ConfigError(f"layer {index} does not exist: choose 0 (stem) to {model.iters}{more}")


def visualize_layers(model: nn.Module, cfg: FeatVizConfig, *, filters: Sequence[int],
                     layer_indices: Sequence[int] | None = None, **kwargs,
                     ) -> list[Visualisation]:
    """Visualise ``filters`` at every requested layer (default: stem and every iteration)."""
    net = require_unrolled(model)
    indices = range(net.iters + 1) if layer_indices is None else layer_indices
    return [visualize(net, i, filters, replace(cfg, batch=len(filters)), **kwargs)
            for i in indices]


def plot_grid(columns: dict[str, list[Visualisation]], path: str, *, show: int = 4,
              depth_of: Callable[[str, Visualisation], int] | None = None) -> None:
    """Image grid like Figures 7/8: a row per layer, a column block per model (e.g. recurrent
    iterations beside feed-forward blocks), ``show`` filters per cell."""
    from recurdepth.analysis.plots import plt, save_figure

    names = list(columns)
    rows = max(len(v) for v in columns.values())
    per = min(show, min(len(v.filters) for vs in columns.values() for v in vs))
    fig, axes = plt.subplots(rows, per * len(names), squeeze=False,
                             figsize=(1.3 * per * len(names) + 0.8, 1.35 * rows + 0.6))
    for c, name in enumerate(names):
        for r in range(rows):
            vis = columns[name][r] if r < len(columns[name]) else None
            for k in range(per):
                ax = axes[r][c * per + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if vis is None:
                    ax.axis("off")
                    continue
                img = vis.images[k].permute(1, 2, 0).numpy()
                ax.imshow(img[..., 0] if img.shape[2] == 1 else img,
                          cmap="gray" if img.shape[2] == 1 else None, vmin=0, vmax=1)
                if r == 0:
                    # Left-aligned, the model's name runs over its own columns, not off the page.
                    ax.set_title(f"{name}\nfilter {vis.filters[k]}" if k == 0
                                 else f"filter {vis.filters[k]}", fontsize=8,
                                 loc="left" if k == 0 else "center")
                if c == 0 and k == 0:
                    label = vis.layer if depth_of is None else f"{vis.layer}\n(depth " \
                        f"{depth_of(name, vis)})"
                    ax.set_ylabel(label, fontsize=8)
    save_figure(fig, path)
