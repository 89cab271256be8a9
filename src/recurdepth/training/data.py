"""Turn a resolved RunConfig into batches: on-device uint8 tensors for small data sets, a DataLoader for ImageNet.

Every fact of a data set (its loader, normalisation, augmentation) comes from its record in the
data-set registry. Maze images have no mean/std there and are fed as ``x / 255``, so walls stay
exactly 0 and the wall mask can be read off any batch. Evaluation batches
(test, and train without augmentation) are never augmented or shuffled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from recurdepth.data.augment import AugmentConfig, FreshTensorBatches, TensorBatches
from recurdepth.data.registry import get_dataset
from recurdepth.errors import DataError
from recurdepth.training.config import RunConfig
from recurdepth.training.distributed import SINGLE, Dist

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class LoaderBatches:
    """An ImageNet DataLoader with ``set_epoch``: its shuffle order derives from (seed, epoch).

    ``presharded``: the loader's DistributedSampler already gives this process its share of
    every epoch, so the training loop does not slice the batches again.
    """

    def __init__(self, loader: torch.utils.data.DataLoader, *, seed: int, device: str,
                 rank: int = 0) -> None:
        self.loader, self.seed, self.device, self.epoch = loader, seed, torch.device(device), 0
        self.rank = rank
        self.presharded = isinstance(loader.sampler, torch.utils.data.DistributedSampler)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle order the next iteration yields."""
        self.epoch = int(epoch)
        if self.presharded:
            self.loader.sampler.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def num_samples(self) -> int:
        """Number of images in the folder."""
        return len(self.loader.dataset)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from recurdepth.data.augment import epoch_seed

        # The shuffle order and the workers' seeds are drawn from these generators.
        # Each process's workers draw their own augmentation (the rank offsets their seeds).
        seed = epoch_seed(self.seed, self.epoch) + self.rank
        self.loader.generator = torch.Generator().manual_seed(seed)
        if hasattr(self.loader.sampler, "generator"):
            self.loader.sampler.generator = torch.Generator().manual_seed(seed)
        for x, y in self.loader:
            yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))


@dataclass
class RunData:
    """The batches of one run: augmented train, un-augmented train (for accuracy) and test."""

    train: Batches
    train_eval: Batches
    test: Batches
    num_classes: int


def _split_limit(cfg: RunConfig, split: str, limit: int | None) -> int | None:
    if limit is not None:
        return limit
    return cfg.data.train_limit if split == "train" else cfg.data.test_limit


def build_batches(cfg: RunConfig, split: str, *, train: bool, limit: int | None = None,
                  size: int | None = None, device: str | None = None,
                  dist: Dist = SINGLE) -> Batches:
    """Batches of ``split``: shuffled and augmented when ``train``, else in file order, plain.

    ``cfg`` must be resolved (:func:`recurdepth.training.config.resolve`). ``size`` picks
    another example size than the one trained on (evaluation only; sized tasks such as mazes). With ``dist`` of several
    processes, ImageNet training batches are this process's share (a DistributedSampler); other
    data sets yield the global batches, which the training loop slices.
    """
    device = device or cfg.runtime.device
    limit = _split_limit(cfg, split, limit)
    batch_size = cfg.train.batch_size if train else cfg.train.eval_batch_size
    info = get_dataset(cfg.data.name)
    if info.streamed:
        from recurdepth.data.vision import imagenet_loader

        drop_last = train and cfg.train.drop_last
        loader = imagenet_loader(cfg.data.root, split, batch_size=batch_size,
                                 workers=cfg.data.workers, train=train, drop_last=drop_last)
        if limit is not None or (train and dist.enabled):
            loader = _imagenet_subset_loader(loader, cfg, limit, train=train, dist=dist,
                                             drop_last=drop_last)
        return LoaderBatches(loader, seed=cfg.seed, device=device, rank=dist.rank)
    size = (size or cfg.example_size()) if cfg.task.sized else None
    fresh = train and split == "train" and bool(cfg.data.options.get("fresh"))
    if fresh:
        # A new training set per epoch (generated data sets): drawn from (data seed, epoch).
        def draw(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
            return info.epoch_tensors(cfg.data.root, size=size, limit=limit, epoch=epoch)

        inputs, targets = draw(0)
    else:
        inputs, targets = info.load_tensors(cfg.data.root, split, size=size, limit=limit,
                                            download=cfg.data.download)
    if len(inputs) == 0:
        raise DataError(f"the {split} split of {cfg.data.name} under {cfg.data.root} is empty (0 "
                        f"samples); a run needs training and test samples: check data.root and "
                        f"the data set")
    kwargs = dict(batch_size=batch_size, shuffle=train,
                  augment=augment_config(cfg) if train else None, mean=info.mean, std=info.std,
                  input_range=cfg.task.input_range, device=device, seed=cfg.seed,
                  drop_last=train and cfg.train.drop_last)
    if fresh:
        return FreshTensorBatches(draw, first=(inputs, targets), **kwargs)
    return TensorBatches(inputs, targets, **kwargs)


def _imagenet_subset_loader(loader: torch.utils.data.DataLoader, cfg: RunConfig, limit: int | None,
                            *, train: bool, dist: Dist,
                            drop_last: bool = False) -> torch.utils.data.DataLoader:
    """The ImageNet loader over the first ``limit`` images, sharded over processes when training."""
    ds = loader.dataset
    if limit is not None:
        ds = torch.utils.data.Subset(ds, range(min(limit, len(ds))))
    batch_size, sampler = loader.batch_size, None
    if train and dist.enabled:
        # Each process loads its share of the global batch; the sampler splits every epoch.
        batch_size = -(-cfg.train.batch_size // dist.world_size)
        sampler = torch.utils.data.DistributedSampler(ds, num_replicas=dist.world_size,
                                                      rank=dist.rank, shuffle=True, seed=cfg.seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                       shuffle=train and sampler is None, drop_last=drop_last,
                                       num_workers=cfg.data.workers, pin_memory=loader.pin_memory)


def augment_config(cfg: RunConfig) -> AugmentConfig:
    """The training augmentation of a resolved config."""
    return AugmentConfig(crop_padding=cfg.data.crop_padding or 0, hflip=bool(cfg.data.hflip),
                         vflip=bool(cfg.data.vflip), shift=int(cfg.data.options.get("shift", 0)))


def build_run_data(cfg: RunConfig, dist: Dist = SINGLE) -> RunData:
    """All batches a run needs; the uint8 train set is shared by both train views."""
    train = build_batches(cfg, "train", train=True, dist=dist)
    if isinstance(train, TensorBatches):
        # Same uint8 tensor on the device, no augmentation, file order: train accuracy (SPEC §2).
        train_eval = TensorBatches(train.inputs, train.targets,
                                   batch_size=cfg.train.eval_batch_size, shuffle=False,
                                   augment=None, mean=train.mean, std=train.std,
                                   input_range=train.input_range, device=train.device,
                                   seed=cfg.seed)
    else:
        train_eval = build_batches(cfg, "train", train=False)
    test = build_batches(cfg, "test", train=False)
    return RunData(train=train, train_eval=train_eval, test=test,
                   num_classes=get_dataset(cfg.data.name).num_classes)


def train_subset(cfg: RunConfig, data: RunData) -> Batches | None:
    """The fixed, un-augmented training subset for per-epoch train accuracy (None: off).

    Its size is ``train.eval_train_limit`` (None: as many samples as the test set): the first
    samples in file order, so every epoch and every run measures the same images.
    """
    limit = cfg.train.eval_train_limit
    if limit is None:
        limit = getattr(data.test, "num_samples", None)
    if not limit:
        return None
    full = data.train_eval
    if isinstance(full, TensorBatches):
        n = min(int(limit), full.num_samples)
        return TensorBatches(full.inputs[:n], full.targets[:n], batch_size=full.batch_size,
                             shuffle=False, augment=None, mean=full.mean, std=full.std,
                             input_range=full.input_range, device=full.device, seed=cfg.seed)
    return build_batches(cfg, "train", train=False, limit=int(limit))


def eval_tensors(config: RunConfig, split: str = "test", *, limit: int | None = None,
                 device: str = "cpu", maze_size: int | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact preprocessed inputs (normalised floats) and targets a run is evaluated on
    (``maze_size``: mazes of another size than the run's)."""
    from recurdepth.training.config import resolve_on

    cfg = resolve_on(config, device)
    batches = build_batches(cfg, split, train=False, limit=limit, size=maze_size,
                            device=device)
    xs, ys = [], []
    for x, y in batches:
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


__all__ = ["LoaderBatches", "RunData", "augment_config", "build_batches", "build_run_data",
           "eval_tensors", "train_subset"]
