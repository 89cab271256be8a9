"""Receptive field per effective depth (paper §4.3, Table 2), analytic and measured.

* Analytic: along the main path (residual shortcuts add nothing), each layer of kernel k, stride s
  and dilation d grows the receptive field by ``(k - 1)·d·jump`` where ``jump`` is the product of
  the strides before it.
* Measured: the extent of the nonzero input gradient of the centre output pixel in a copy of the
  model whose convolutions are all positive (1/fan-in, no bias) and whose max-pools are average
  pools of the same geometry, in float64, so no path cancels, dies at a ReLU or underflows.

Both are for the last spatial feature map: the output for maze solvers, the map before global
pooling or flattening for classifiers.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from recurdepth.analysis.features import require_unrolled, resolve_iters
from recurdepth.errors import ConfigError
from recurdepth.models import UnrolledNet

_GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)
_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_SHORTCUT_NAMES = ("shortcut", "downsample")


def _pair(v: int | tuple[int, ...]) -> int:
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ConfigError("receptive fields of non-square kernels are not supported")
        return v[0]
    return v


def _spatial_ops(module: nn.Module) -> tuple[list[nn.Module], bool]:
    """Spatial layers of ``module`` on its main path, in order; True if a global op ends it."""
    ops: list[nn.Module] = []
    for name, sub in module.named_modules():
        if any(part in _SHORTCUT_NAMES for part in name.split(".")):
            continue
        if isinstance(sub, _GLOBAL):
            return ops, True
        if isinstance(sub, _SPATIAL):
            ops.append(sub)
    return ops, False


def _path(model: UnrolledNet, iters: int) -> list[nn.Module]:
    stem, stops = _spatial_ops(model.stem)
    if stops:
        return stem  # MLP: the stem flattens the image, nothing after it is spatial
    units = [model.body[0]] * iters if model.recurrent else list(model.body[:iters])
    path = stem + [op for unit in units for op in _spatial_ops(unit)[0]]
    return path + _spatial_ops(model.head)[0]


def analytic_receptive_field(model: nn.Module, iters: int | None = None) -> int:
    """Receptive field (pixels per side) of one pixel of the last spatial map, by formula."""
    net = require_unrolled(model)
    n = resolve_iters(net, iters)
    rf, jump = 1, 1
    for op in _path(net, n):
        k = _pair(op.kernel_size)
        d = _pair(op.dilation) if hasattr(op, "dilation") else 1
        rf += (k - 1) * d * jump
        jump *= _pair(op.stride if op.stride is not None else k)
    return rf


def _positive_copy(model: UnrolledNet) -> UnrolledNet:
    net = copy.deepcopy(model).to(torch.float64).eval()
    for name, sub in list(net.named_modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(sub, child_name, nn.AvgPool2d(child.kernel_size, child.stride,
                                                      child.padding, ceil_mode=child.ceil_mode))
    with torch.no_grad():
        for sub in net.modules():
            if isinstance(sub, nn.Conv2d):
                fan_in = sub.weight[0].numel()
                sub.weight.fill_(1.0 / fan_in)
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(sub, nn.BatchNorm2d):
                sub.reset_parameters()  # identity: weight 1, bias 0, mean 0, var 1
    return net


def _last_spatial_map(net: UnrolledNet, x: Tensor, iters: int) -> Tensor:
    h = x
    for h in net.iterate(x, iters):
        pass
    if not isinstance(net.head, nn.Sequential):
        return h
    for layer in net.head:
        if isinstance(layer, _GLOBAL):
            break
        h = layer(h)
    return h


def measured_receptive_field(model: nn.Module, iters: int | None = None, *,
                             size: int | None = None) -> int:
    """Receptive field of the centre pixel of the last spatial map, from input gradients."""
    net = require_unrolled(model)
    n = resolve_iters(net, iters)
    if _spatial_ops(net.stem)[1]:
        raise ConfigError(f"{net.family} flattens its input: it has no spatial receptive field")
    rf = analytic_receptive_field(net, n)
    size = size or rf + 16
    probe = _positive_copy(net)
    in_channels = next(m for m in probe.stem.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.ones(1, in_channels, size, size, dtype=torch.float64, requires_grad=True)
    out = _last_spatial_map(probe, x, n)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    nonzero = (x.grad[0] != 0).any(0)
    rows = nonzero.any(1).nonzero().flatten()
    cols = nonzero.any(0).nonzero().flatten()
    extent = max(int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1)
    if rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1:
        raise ConfigError(f"the receptive field reaches the border of the {size}px probe "
                          f"image: give a larger size")
    return extent


@dataclass
class ReceptiveFieldRow:
    """Receptive field of one model at one effective depth."""

    family: str
    dilation: int
    iters: int
    effective_depth: int
    analytic: int
    measured: int | None
    image_side: int | None
    covers_from_centre: bool | None
    covers_from_any_pixel: bool | None

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def receptive_field_table(family: str, iters_list: list[int], *, dataset: str | None = None,
                          dilations: tuple[int, ...] = (1,), image_side: int | None = None,
                          measure: bool = True) -> list[ReceptiveFieldRow]:
    """Receptive field for every iteration count and dilation (tiny width: weights don't matter).

    A dilation other than 1 builds the family, or its variant, that declares a ``dilation``
    option (for ``maze``: ``maze_dilated``); a family that declares it gets it at 1 too.
    ``image_side`` (e.g. 24 for small mazes) adds whether the field covers the image from the
    centre pixel (rf ≥ side) and from every pixel (rf ≥ 2·side − 1).
    """
    from recurdepth.models import build_model, family_with_option, get_family
    from recurdepth.training.config import MAX_ITERS

    bad = [i for i in iters_list if isinstance(i, bool) or not isinstance(i, int)
           or not 1 <= i <= MAX_ITERS]
    if not iters_list or bad:
        raise ConfigError(f"iteration counts must be integers in 1..{MAX_ITERS:,} (e.g. "
                          f"--max-iters 10), got {bad[0] if bad else 'none'}")
    rows = []
    for dilation in dilations:
        fam = family if dilation == 1 else family_with_option(family, "dilation")
        opts = {"dilation": dilation} if "dilation" in get_family(fam).options else {}
        for iters in iters_list:
            model = build_model(fam, "recurrent", iters=iters, width=2, dataset=dataset, **opts)
            rf = analytic_receptive_field(model)
            measured = measured_receptive_field(model) if measure else None
            rows.append(ReceptiveFieldRow(
                family=fam, dilation=dilation, iters=iters,
                effective_depth=model.effective_depth, analytic=rf, measured=measured,
                image_side=image_side,
                covers_from_centre=None if image_side is None else rf >= image_side,
                covers_from_any_pixel=None if image_side is None else rf >= 2 * image_side - 1))
    return rows


def plot_receptive_field(rows: list[ReceptiveFieldRow], path: str) -> None:
    """Receptive field against effective depth, one line per dilation, image side dashed."""
    from recurdepth.analysis.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for dilation in sorted({r.dilation for r in rows}):
        sel = [r for r in rows if r.dilation == dilation]
        ax.plot([r.effective_depth for r in sel], [r.analytic for r in sel], "o-",
                label=f"dilation {dilation} (analytic)")
        measured = [r for r in sel if r.measured is not None]
        if measured:
            ax.plot([r.effective_depth for r in measured], [r.measured for r in measured], "kx",
                    markersize=8)
    side = rows[0].image_side if rows else None
    if side:
        ax.axhline(side, ls="--", color="gray", label=f"image side ({side} px)")
        ax.axhline(2 * side - 1, ls=":", color="gray", label=f"2·side − 1 ({2 * side - 1} px)")
    ax.set_xlabel("effective depth")
    ax.set_ylabel("receptive field (pixels per side)")
    ax.set_title(f"{rows[0].family if rows else ''}: receptive field (× = measured)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
