"""The data-set registry: one record per data set, the only home of its facts.

A record says what a data set is (input channels, image side, classes, task), how its images are
normalised and augmented by default, the paper's training batch size, which function loads a
split as tensors and which lists the files a run reads (its data fingerprint). Adding a data set
is one :func:`register_dataset` call; models, configs, data pipelines and reports read everything
from here. This module imports no torch: a record names its functions as ``"module:function"``
(imported when used) or holds the functions themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recurdepth.data.options import DataOption
from recurdepth.data.tasks import TASKS
from recurdepth.data.tasks.maze import MAZE_OPTIONS
from recurdepth.errors import ConfigError, choices_message

# loader(name, root, split, *, size, limit, download) -> (uint8 inputs (N,C,H,W), int64 targets);
# ``size`` is the example size (data.options.size) for data sets of a sized task, else None.
Loader = Callable[..., Any]
# files(name, root, sizes) -> {file: sha256} of the files a run reads; ``sizes`` as for loaders.
FileLister = Callable[..., dict[str, str]]


def _function(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """The function a record names as ``"module:function"`` (or holds itself)."""
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package knows of one data set."""

    name: str
    in_channels: int
    image_size: int | None  # None: any size (fully convolutional maze solvers)
    num_classes: int  # classes, or logits per pixel for mazes
    task: str  # a name of recurdepth.data.tasks.TASKS: classification | maze
    loader: str | Loader  # tensors of a split; "module:function" or the function
    batch_size: int  # the paper's training batch size
    mean: tuple[float, ...] | None = None  # None: inputs are x / 255 (walls stay exactly 0)
    std: tuple[float, ...] | None = None
    crop_padding: int = 0  # default training augmentation
    hflip: bool = False
    vflip: bool = False
    streamed: bool = False  # read image by image by a DataLoader (ImageNet), not held as tensors
    description: str = ""
    # image_size None: the image side of an example size, "module:function" or the function.
    side_of_size: str | Callable[[int], int] | None = None
    files: str | FileLister | None = None  # None: runs on it record no data fingerprint
    options: Mapping[str, DataOption] = field(default_factory=dict)  # data.options.<key>
    # Data made on demand rather than downloaded (mazes): ``present(name, root, size) -> bool``
    # and ``preparer(name, root, size, *, progress, **settings)``, whose settings are an
    # experiment's ``prepare: {<data set>: {...}}`` keys, listed in ``prepare_settings``.
    present: str | Callable[..., bool] | None = None
    preparer: str | Callable[..., None] | None = None
    prepare_settings: tuple[str, ...] = ()
    how_to_make: str = ""  # the command that makes missing data, with {size} and {root}
    # Generated data sets that can draw a new training set per epoch (``data.options.fresh``):
    # ``epoch_loader(name, root, *, size, limit, epoch)`` -> tensors like ``loader``'s.
    epoch_loader: str | Loader | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(choices_message("task", self.task, sorted(TASKS)))
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"data set {self.name!r}: give both mean and std, or neither")
        if (self.present is None) != (self.preparer is None):
            raise ValueError(f"data set {self.name!r}: give both present and preparer, or neither")

    @property
    def generated(self) -> bool:
        """True when runs' data is made on demand (:meth:`prepare`), not read or downloaded."""
        return self.preparer is not None

    def missing_sizes(self, root: str, sizes: tuple[int, ...]) -> list[int]:
        """The example sizes whose data is not under ``root`` yet (generated data sets only)."""
        if self.present is None:
            return []
        present = _function(self.present)
        return [s for s in sizes if not present(self.name, root, s)]

    def prepare(self, root: str, size: int, *, progress: bool = True, **settings: Any) -> None:
        """Make the data of ``size`` under ``root`` with ``settings`` (see ``prepare_settings``)."""
        if self.preparer is None:
            raise ConfigError(f"data set {self.name!r} is not generated; nothing to prepare")
        _function(self.preparer)(self.name, root, size, progress=progress, **settings)

    def image_side(self, size: int | None = None) -> int | None:
        """Side in pixels of the inputs (for a data set of any size: of examples of ``size``)."""
        if self.image_size is not None or size is None or self.side_of_size is None:
            return self.image_size
        return int(_function(self.side_of_size)(size))

    def data_files(self, root: str, sizes: tuple[int, ...] = ()) -> dict[str, str]:
        """``{file: sha256}`` of the data under ``root`` a run reads (``sizes``: example sizes)."""
        return {} if self.files is None else _function(self.files)(self.name, root, sizes)

    def load_tensors(self, root: str, split: str, *, size: int | None = None,
                     limit: int | None = None, download: bool = False) -> Any:
        """Split ``split`` as uint8 inputs (N,C,H,W) and int64 targets (see ``Loader``)."""
        return _function(self.loader)(self.name, root, split, size=size, limit=limit,
                                      download=download)


    def epoch_tensors(self, root: str, *, size: int | None = None, limit: int | None = None,
                      epoch: int = 0) -> Any:
        """The training set of ``epoch`` as uint8 inputs and int64 targets (``epoch_loader``)."""
        if self.epoch_loader is None:
            raise ConfigError(f"data set {self.name!r} has one fixed training set; it draws no "
                              f"new one per epoch")
        return _function(self.epoch_loader)(self.name, root, size=size, limit=limit, epoch=epoch)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (ValueError if its name is taken)."""
    if spec.name in _DATASETS:
        raise ValueError(f"data set {spec.name!r} is already registered")
    for name, opt in spec.options.items():
        for other in _DATASETS.values():
            o = other.options.get(name)
            if opt.alias and o is not None and o.alias not in (None, opt.alias):
                raise ValueError(f"data set {spec.name!r}: option {name!r} has alias "
                                 f"{opt.alias!r} but {other.name!r} calls it {o.alias!r}")
    _DATASETS[spec.name] = spec
    return spec


def option_owners() -> dict[str, list[str]]:
    """Option name → the data sets that declare it (for error messages)."""
    owners: dict[str, list[str]] = {}
    for spec in _DATASETS.values():
        for name in spec.options:
            owners.setdefault(name, []).append(spec.name)
    return owners


def options_help() -> str:
    """One sentence naming every data set's options and their older keys (for ``--help``)."""
    parts = []
    for spec in sorted(_DATASETS.values(), key=lambda s: s.name):
        if spec.options:
            names = ", ".join(f"{n} (data.{o.alias})" if o.alias else n
                              for n, o in spec.options.items())
            parts.append(f"{spec.name}: {names}")
    return "Data-set options (data.options.KEY): " + ("; ".join(parts) or "none") + "."


def option_aliases() -> dict[str, str]:
    """Older data keys → the option they became (``maze_size`` → ``size``), over all data sets."""
    return {opt.alias: name for spec in _DATASETS.values()
            for name, opt in spec.options.items() if opt.alias}


def get_dataset(name: str) -> DatasetSpec:
    """The record of data set ``name``, or a ConfigError listing the registered data sets."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise ConfigError(choices_message("data set", name, sorted(_DATASETS))) from None


def find_dataset(name: str) -> DatasetSpec | None:
    """The record of data set ``name``, or None when there is none (no error)."""
    return _DATASETS.get(name)


def list_datasets() -> list[str]:
    """Names of every registered data set, sorted."""
    return sorted(_DATASETS)


_VISION = "recurdepth.data.vision:load_tensors"
_MAZES = "recurdepth.data.mazes.dataset:load_tensors"
_VISION_FILES = "recurdepth.data.fingerprint:vision_files"

# Normalisation: the constants of the authors' code (SPEC §2). CIFAR-10's std (0.2023, 0.1994,
# 0.2010) is the average of per-image stds the authors used, not the all-pixel std
# (0.2470, 0.2435, 0.2616); EMNIST uses the MNIST constants 0.1307/0.3081 as the authors did.
# Augmentation (SPEC §2): CIFAR-10 crop 32 with pad 4 + flip; SVHN flip; EMNIST the authors'
# horizontal flip of the stored (transposed) images, i.e. a top-bottom flip of upright letters.
register_dataset(DatasetSpec(
    "cifar10", 3, 32, 10, "classification", _VISION, 128,
    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010), crop_padding=4, hflip=True,
    files=_VISION_FILES,
    description="CIFAR-10 (50,000 train / 10,000 test, 10 classes)"))
register_dataset(DatasetSpec(
    "svhn", 3, 32, 10, "classification", _VISION, 128,
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), hflip=True, files=_VISION_FILES,
    description="SVHN train split (73,257 images; not `extra`), 10 classes"))
register_dataset(DatasetSpec(
    "emnist", 1, 28, 47, "classification", _VISION, 128,
    mean=(0.1307,), std=(0.3081,), vflip=True, files=_VISION_FILES,
    description="EMNIST balanced (47 classes), letters upright"))
register_dataset(DatasetSpec(
    "imagenet", 3, 224, 1000, "classification", "recurdepth.data.vision:imagenet_loader", 128,
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), hflip=True, streamed=True,
    files=_VISION_FILES,
    description="ILSVRC-2012 in ImageFolder layout (random-resized crop + flip per image)"))
# Maze solvers are fully convolutional: 2 logits (path / not path) per pixel, any maze size.
register_dataset(DatasetSpec(
    "mazes", 3, None, 2, "maze", _MAZES, 50,
    side_of_size="recurdepth.data.mazes.generate:image_side",
    files="recurdepth.data.fingerprint:maze_files", options=MAZE_OPTIONS,
    present="recurdepth.data.mazes.dataset:maze_data_present",
    preparer="recurdepth.data.mazes.dataset:prepare_maze_data",
    prepare_settings=("n_train", "n_test", "seed"),
    how_to_make="recurdepth mazes generate --size {size} --data-root {root}",
    description="2-D mazes of the paper (generated or the published easy-to-hard data)"))

# Plug-ins kept outside this file: each module registers its own task(s) and data set(s) when
# imported (it may import this module: everything above is defined by then). A new kind of
# problem is one such module and its name here.
PLUGINS: tuple[str, ...] = ("recurdepth.data.strings", "recurdepth.data.sequences")
for _module in PLUGINS:
    importlib.import_module(_module)


__all__ = ["PLUGINS", "DataOption", "DatasetSpec", "FileLister", "Loader", "find_dataset", "get_dataset",
           "list_datasets", "option_aliases", "option_owners", "options_help",
           "register_dataset"]
