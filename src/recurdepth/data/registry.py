"""The data-set registry: one record per data set, the only home of its facts.

A record says what a data set is (input channels, image side, classes, task), how its images are
normalised and augmented by default, the paper's training batch size, and which function loads a
split as tensors. Adding a data set is one :func:`register_dataset` call; models, configs, data
pipelines and reports read everything from here. This module imports no torch: a record names its
loader as ``"module:function"`` (imported when data is loaded) or holds the function itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recurdepth.errors import ConfigError, choices_message

TASKS = ("classification", "maze")

# loader(name, root, split, *, size, limit, download) -> (uint8 inputs (N,C,H,W), int64 targets);
# ``size`` is the maze size for maze data sets and None otherwise.
Loader = Callable[..., Any]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package knows of one data set."""

    name: str
    in_channels: int
    image_size: int | None  # None: any size (fully convolutional maze solvers)
    num_classes: int  # classes, or logits per pixel for mazes
    task: str  # classification | maze
    loader: str | Loader  # tensors of a split; "module:function" or the function
    batch_size: int  # the paper's training batch size
    mean: tuple[float, ...] | None = None  # None: inputs are x / 255 (walls stay exactly 0)
    std: tuple[float, ...] | None = None
    crop_padding: int = 0  # default training augmentation
    hflip: bool = False
    vflip: bool = False
    streamed: bool = False  # read image by image by a DataLoader (ImageNet), not held as tensors
    description: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(choices_message("task", self.task, TASKS))
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"data set {self.name!r}: give both mean and std, or neither")

    @property
    def is_maze(self) -> bool:
        """True for per-pixel maze solving (exact-match accuracy, walls masked out)."""
        return self.task == "maze"

    def load_tensors(self, root: str, split: str, *, size: int | None = None,
                     limit: int | None = None, download: bool = False) -> Any:
        """Split ``split`` as uint8 inputs (N,C,H,W) and int64 targets (see ``Loader``)."""
        loader = self.loader
        if isinstance(loader, str):
            module, _, attr = loader.partition(":")
            loader = getattr(importlib.import_module(module), attr)
        return loader(self.name, root, split, size=size, limit=limit, download=download)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (ValueError if its name is taken)."""
    if spec.name in _DATASETS:
        raise ValueError(f"data set {spec.name!r} is already registered")
    _DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The record of data set ``name``, or a ConfigError listing the registered data sets."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise ConfigError(choices_message("data set", name, sorted(_DATASETS))) from None


def list_datasets() -> list[str]:
    """Names of every registered data set, sorted."""
    return sorted(_DATASETS)


_VISION = "recurdepth.data.vision:load_tensors"
_MAZES = "recurdepth.data.mazes.dataset:load_tensors"

# Normalisation: the constants of the authors' code (SPEC §2). CIFAR-10's std (0.2023, 0.1994,
# 0.2010) is the average of per-image stds the authors used, not the all-pixel std
# (0.2470, 0.2435, 0.2616); EMNIST uses the MNIST constants 0.1307/0.3081 as the authors did.
# Augmentation (SPEC §2): CIFAR-10 crop 32 with pad 4 + flip; SVHN flip; EMNIST the authors'
# horizontal flip of the stored (transposed) images, i.e. a top-bottom flip of upright letters.
register_dataset(DatasetSpec(
    "cifar10", 3, 32, 10, "classification", _VISION, 128,
    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010), crop_padding=4, hflip=True,
    description="CIFAR-10 (50,000 train / 10,000 test, 10 classes)"))
register_dataset(DatasetSpec(
    "svhn", 3, 32, 10, "classification", _VISION, 128,
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), hflip=True,
    description="SVHN train split (73,257 images; not `extra`), 10 classes"))
register_dataset(DatasetSpec(
    "emnist", 1, 28, 47, "classification", _VISION, 128,
    mean=(0.1307,), std=(0.3081,), vflip=True,
    description="EMNIST balanced (47 classes), letters upright"))
register_dataset(DatasetSpec(
    "imagenet", 3, 224, 1000, "classification", "recurdepth.data.vision:imagenet_loader", 128,
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), hflip=True, streamed=True,
    description="ILSVRC-2012 in ImageFolder layout (random-resized crop + flip per image)"))
# Maze solvers are fully convolutional: 2 logits (path / not path) per pixel, any maze size.
register_dataset(DatasetSpec(
    "mazes", 3, None, 2, "maze", _MAZES, 50,
    description="2-D mazes of the paper (generated or the published easy-to-hard data)"))


__all__ = ["TASKS", "DatasetSpec", "Loader", "get_dataset", "list_datasets", "register_dataset"]
