"""Linear probes (paper §5.1, Tables 3, 6, 7): how linearly separable are the classes after each
block / iteration?

One linear classifier per layer is trained on the frozen features (standardised per feature with
the training set's mean and standard deviation, which changes nothing a linear model can express
but makes one learning rate fit every layer; features constant on the training set are zeroed),
with a weight decay chosen on a validation split of the training set unless one is given. Features are streamed in batches from the model;
they are kept in memory between epochs only when they fit in ``cache_bytes``.

Maze solvers label pixels, not images: their probe is a linear classifier applied to each pixel's
feature vector (a 1x1 convolution to 2 logits), trained with cross-entropy over open pixels (walls
excluded, like the training loss; see :func:`recurdepth.training.evaluate.wall_mask`). Reported:
*pixel accuracy*, the share of open pixels labelled correctly, and *solved* (``train_acc`` /
``test_acc``), the share of mazes whose every open pixel is correct (the paper's maze accuracy,
walls masked).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurdepth.analysis.features import feature_batches, layers, require_unrolled
from recurdepth.data.registry import get_dataset
from recurdepth.data.tasks import task_of
from recurdepth.errors import ConfigError, choices_message

TASKS = ("classification", "maze")

# One batch: the features of every probed layer and the targets (labels (N,), or for mazes
# solutions (N, H, W) and the open-pixel mask (N, H, W)).
Batch = tuple[list[Tensor], Tensor, Tensor | None]


@dataclass
class ProbeResult:
    """Accuracies (percent) of the linear probe of one layer."""

    layer: str
    effective_depth: int
    features: int
    train_acc: float
    test_acc: float
    train_pixel_acc: float | None = None
    test_pixel_acc: float | None = None
    weight_decay: float | None = None
    dead_features: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def pool_transform(size: int | None) -> Callable[[Tensor], Tensor] | None:
    """Adaptive average pooling of (N, C, H, W) features to ``size`` × ``size`` (None: no pooling)."""
    if size is None:
        return None
    if size < 1:
        raise ConfigError(f"pool size must be >= 1, got {size}")

    def pool(f: Tensor) -> Tensor:
        if f.dim() != 4:
            raise ConfigError("pooling needs spatial (N, C, H, W) features; this model's "
                              "features are vectors: probe without --pool")
        return F.adaptive_avg_pool2d(f, size)

    return pool


class _Standardiser:
    """Per-feature mean and standard deviation (per channel for per-pixel probes), streamed.

    Sums are taken in float64 around a fixed shift (the first batch's mean), so large means cost
    no precision. Features with no variance on the training set ("dead" features, e.g. a ReLU
    that never fires) get a scale of 0: they carry no information the probe could learn, and a
    value they take only on new data must not move the prediction.
    """

    def __init__(self, per_pixel: bool) -> None:
        self.per_pixel = per_pixel
        self.n = 0
        self.shift: Tensor | None = None
        self.sum: Tensor | None = None
        self.sq: Tensor | None = None

    def _rows(self, f: Tensor) -> Tensor:
        if self.per_pixel:
            return f.transpose(0, 1).reshape(f.shape[1], -1).T
        return f.reshape(len(f), -1)

    def update(self, f: Tensor) -> None:
        rows = self._rows(f).to(torch.float64)
        if self.shift is None:
            self.shift = rows.mean(0)
        rows = rows - self.shift
        s, q = rows.sum(0), (rows * rows).sum(0)
        self.sum = s if self.sum is None else self.sum + s
        self.sq = q if self.sq is None else self.sq + q
        self.n += len(rows)

    def finish(self) -> tuple[Tensor, Tensor]:
        """(mean, 1 / std) per feature; 1 / std is 0 for features constant on the training set."""
        offset = self.sum / self.n
        var = (self.sq / self.n - offset * offset).clamp_min(0)
        mean = self.shift + offset
        # Constant up to rounding of float32 features: relative spread below 1e-6.
        dead = var.sqrt() <= 1e-6 * mean.abs() + 1e-12
        inv_std = torch.where(dead, torch.zeros_like(var), var.rsqrt())
        return mean.float(), inv_std.float()


def _cached(make: Callable[[], Iterable[Batch]], limit: int) -> Callable[[], Iterable[Batch]]:
    """Keep the batches in memory if they fit in ``limit`` bytes, else stream them every time."""
    cache: list[Batch] = []
    size = 0
    for feats, y, mask in make():
        size += sum(f.numel() * f.element_size() for f in feats)
        if size > limit:
            return make
        cache.append(([f.cpu() for f in feats], y.cpu(), None if mask is None else mask.cpu()))
    return lambda: cache


# Candidate weight decays (L2 penalty of Adam) tried on the validation split of the training set.
WEIGHT_DECAYS = (0.0, 1e-4, 1e-3, 1e-2)
VALIDATION_SHARE = 0.2


def _part(make: Callable[[], Iterable[Batch]], part: str) -> Callable[[], Iterator[Batch]]:
    """The validation (first fifth of every batch) or fitting (the rest) part of the batches."""

    def batches() -> Iterator[Batch]:
        for feats, y, mask in make():
            k = max(1, int(len(y) * VALIDATION_SHARE))
            if len(y) < 2:
                continue
            sl = slice(0, k) if part == "val" else slice(k, None)
            yield [f[sl] for f in feats], y[sl], None if mask is None else mask[sl]

    return batches


def _fit(make: Callable[[], Iterable[Batch]], norms: list[tuple[Tensor, Tensor]],
         decays: list[list[float]], *, num_classes: int, per_pixel: bool, epochs: int, lr: float,
         seed: int, device, progress: bool) -> list[nn.ModuleList]:
    """Train one probe per layer and per weight decay of ``decays[layer]``, all in one loop."""
    from tqdm import tqdm

    from recurdepth.progress import bar_disable

    probes = [nn.ModuleList(nn.Linear(len(mean), num_classes) for _ in ds).to(device)
              for (mean, _), ds in zip(norms, decays)]
    for group in probes:
        for p in group:  # the problem is convex: a zero start makes the result seed-free
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)
    params = [{"params": p.parameters(), "weight_decay": wd}
              for group, ds in zip(probes, decays) for p, wd in zip(group, ds)]
    opt = torch.optim.Adam(params, lr=lr)
    steps = sum(1 for _ in make())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps))
    order_rng = random.Random(seed)
    for _ in tqdm(range(epochs), desc="probes", disable=bar_disable(progress)):
        batches = make()
        if isinstance(batches, list):
            batches = order_rng.sample(batches, len(batches))
        for feats, y, mask in batches:
            opt.zero_grad(set_to_none=True)
            loss = 0.0
            for group, f, n in zip(probes, feats, norms):
                x = _inputs(f, n, per_pixel, device)
                loss = loss + sum(_loss(p, x, y.to(device), mask, device) for p in group)
            loss.backward()
            opt.step()
            sched.step()
    return probes


def train_probes(train_batches: Callable[[], Iterable[Batch]],
                 test_batches: Callable[[], Iterable[Batch]], *, names: list[str],
                 depths: list[int] | None = None, num_classes: int,
                 task: str = "classification", epochs: int = 20, lr: float = 0.01,
                 weight_decay: float | None = None, cache_bytes: int = 2 << 30, seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = False,
                 ) -> list[ProbeResult]:
    """Train one linear probe per layer on streamed features; return train/test accuracy.

    ``train_batches()`` / ``test_batches()`` return a fresh iterable of batches
    ``(features per layer, targets, mask)`` each time they are called. Adam with cosine decay,
    ``epochs`` passes over the training batches (in a shuffled batch order when cached), from
    zero weights. ``weight_decay=None`` picks, per layer, the value of :data:`WEIGHT_DECAYS` with
    the best accuracy on a validation split (a fifth of every training batch), then retrains on
    all the training data with it.
    """
    if task not in TASKS:
        raise ConfigError(choices_message("probe task", task, TASKS))
    if weight_decay is not None and weight_decay < 0:
        raise ConfigError(f"weight decay must be >= 0, got {weight_decay}")
    per_pixel = task == "maze"
    train_batches = _cached(train_batches, cache_bytes)
    stats = [_Standardiser(per_pixel) for _ in names]
    examples = 0
    for feats, y, _ in train_batches():
        examples += len(y)
        if len(feats) != len(names):
            raise ConfigError(f"expected features of {len(names)} layers, got {len(feats)}")
        for st, f in zip(stats, feats):
            st.update(f)
    norms = [st.finish() for st in stats]
    dims = [len(mean) for mean, _ in norms]
    fit = dict(num_classes=num_classes, per_pixel=per_pixel, epochs=epochs, lr=lr, seed=seed,
               device=device, progress=progress)
    if weight_decay is None and examples < 10:
        weight_decay = 0.0  # too few examples to hold any out
    if weight_decay is None:
        candidates = [list(WEIGHT_DECAYS) for _ in names]
        trial = _fit(_part(train_batches, "fit"), norms, candidates, **fit)
        scores = [_accuracies(nn.ModuleList(group[k] for group in trial),
                              _part(train_batches, "val"), norms, per_pixel, device)
                  for k in range(len(WEIGHT_DECAYS))]
        # Highest validation accuracy; on a tie the stronger decay (the more stable probe).
        metric = 1 if per_pixel else 0  # pixel accuracy separates maze probes more finely
        chosen = [max(range(len(WEIGHT_DECAYS)), key=lambda k: (scores[k][i][metric], k))
                  for i in range(len(names))]
        decays = [WEIGHT_DECAYS[k] for k in chosen]
    else:
        decays = [float(weight_decay)] * len(names)
    probes = nn.ModuleList(group[0] for group in _fit(train_batches, norms,
                                                      [[d] for d in decays], **fit))
    train = _accuracies(probes, train_batches, norms, per_pixel, device)
    test = _accuracies(probes, test_batches, norms, per_pixel, device)
    depths = depths or [0] * len(names)
    return [ProbeResult(layer=name, effective_depth=depth, features=dim,
                        train_acc=tr[0], test_acc=te[0],
                        train_pixel_acc=tr[1], test_pixel_acc=te[1], weight_decay=wd,
                        dead_features=int((n[1] == 0).sum()))
            for name, depth, dim, tr, te, wd, n in zip(names, depths, dims, train, test,
                                                       decays, norms)]


def _inputs(f: Tensor, norm: tuple[Tensor, Tensor], per_pixel: bool, device) -> Tensor:
    """Standardised probe inputs: (N, d) rows, or (N·positions, C) rows for per-position probes."""
    f = f.to(device, torch.float32)
    rows = f.movedim(1, -1).reshape(-1, f.shape[1]) if per_pixel else f.reshape(len(f), -1)
    mean, inv_std = norm
    return (rows - mean.to(device)) * inv_std.to(device)


def _loss(probe: nn.Module, x: Tensor, y: Tensor, mask: Tensor | None, device) -> Tensor:
    if mask is None:
        return F.cross_entropy(probe(x), y.reshape(-1))
    keep = mask.to(device).reshape(-1)
    return F.cross_entropy(probe(x[keep]), y.reshape(-1)[keep])


@torch.no_grad()
def _accuracies(probes: nn.ModuleList, batches: Callable[[], Iterable[Batch]],
                norms: list[tuple[Tensor, Tensor]], per_pixel: bool, device,
                ) -> list[tuple[float, float | None]]:
    """(accuracy, pixel accuracy or None) per layer, in percent."""
    correct = [0] * len(probes)
    pixels_ok = [0] * len(probes)
    total = pixels = 0
    for feats, y, mask in batches():
        y = y.to(device)
        total += len(y)
        if per_pixel:
            m = mask.to(device) if mask is not None else torch.ones_like(y, dtype=torch.bool)
            pixels += int(m.sum())
        for i, (p, f, n) in enumerate(zip(probes, feats, norms)):
            pred = p(_inputs(f, n, per_pixel, device)).argmax(1)
            if not per_pixel:
                correct[i] += int((pred == y).sum())
                continue
            ok = (pred.reshape(y.shape) == y) | ~m  # walls masked (SPEC §3 maze accuracy)
            pixels_ok[i] += int((ok & m).sum())
            correct[i] += int(ok.flatten(1).all(1).sum())
    if total == 0:
        raise ConfigError("no examples to evaluate the probes on")
    return [(100.0 * c / total, 100.0 * po / pixels if per_pixel and pixels else None)
            for c, po in zip(correct, pixels_ok)]


def probe_model(model: nn.Module, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *,
                pool: int | None = None, iters: int | None = None, batch_size: int = 250,
                task: str | None = None, epochs: int = 20, lr: float = 0.01,
                weight_decay: float | None = None, cache_bytes: int = 2 << 30, seed: int = 0, device: str | torch.device = "cpu",
                progress: bool = False) -> list[ProbeResult]:
    """Linear probes on the state after every iteration / block of ``model``.

    ``train`` and ``test`` are (inputs, targets) as the model sees them (preprocessed, without
    augmentation). ``task`` defaults to ``maze`` for maze solvers, else ``classification``.
    """
    net = require_unrolled(model)
    task = task or ("maze" if task_of(net.dataset).per_pixel else "classification")
    if task == "maze" and pool is not None:
        raise ConfigError("maze probes label every pixel: pooling would remove the pixels; "
                          "probe maze solvers without --pool")
    transform = pool_transform(pool)
    captured = layers(net, iters, include_stem=False)
    num_classes = get_dataset(net.dataset).num_classes  # per-position tasks: logits per position
    rules = task_of(net.dataset)

    def stream(data: tuple[Tensor, Tensor]) -> Callable[[], Iterator[Batch]]:
        inputs, targets = data
        if len(inputs) != len(targets):
            raise ConfigError(f"{len(inputs)} inputs but {len(targets)} targets")

        def batches() -> Iterator[Batch]:
            feats_iter = feature_batches(net, inputs, batch_size=batch_size, iters=iters,
                                         include_stem=False, transform=transform, device=device)
            for start, feats in zip(range(0, len(inputs), batch_size), feats_iter):
                stop = start + batch_size
                mask = rules.mask(inputs[start:stop]) if task == "maze" else None
                yield feats, targets[start:stop], mask

        return batches

    return train_probes(stream(train), stream(test), names=[layer.name for layer in captured],
                        depths=[layer.effective_depth for layer in captured],
                        num_classes=num_classes, task=task, epochs=epochs, lr=lr,
                        weight_decay=weight_decay, cache_bytes=cache_bytes, seed=seed, device=device, progress=progress)


def probe_table(results: dict[str, list[ProbeResult]]) -> str:
    """A text table like the paper's Table 3: one row per model, "train / test" per layer."""
    lines = []
    for model_name, rows in results.items():
        cells = [f"{r.layer}: {r.train_acc:.1f} / {r.test_acc:.1f}" for r in rows]
        lines.append(f"{model_name:<14} " + "  ".join(cells))
    return "\n".join(lines)


__all__ = ["ProbeResult", "TASKS", "pool_transform", "probe_model",
           "probe_table", "train_probes"]
