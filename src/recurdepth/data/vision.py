"""Image classification data sets read by torchvision's own data set classes, as uint8 tensors.

CIFAR-10, SVHN and EMNIST (``balanced`` split) are small: ``load_vision_split`` reads one split
through ``torchvision.datasets`` into a uint8 (N,C,H,W) tensor plus int64 labels, which
``augment.TensorBatches`` then keeps on the training device (DESIGN: a per-image DataLoader is for
ImageNet only). ImageNet streams from an ImageFolder tree through ``imagenet_loader``.

On-disk layout under the data root (what torchvision reads and ``download=True`` writes)::

    root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    root/svhn/{train_32x32.mat, test_32x32.mat}
    root/EMNIST/raw/emnist-balanced-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]
    root/imagenet/{train,val}/<class>/*.JPEG
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets, transforms

from recurdepth.data.registry import get_dataset
from recurdepth.errors import ConfigError, DataError, choices_message
from recurdepth.io import atomic_write

VISION_DATASETS = ("cifar10", "svhn", "emnist")
SPLITS = ("train", "test")

@dataclass
class VisionSplit:
    """One split of a data set: uint8 images (N,C,H,W), int64 labels and normalisation stats."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.labels)


# torchvision checks the md5 of the official CIFAR-10 and SVHN files before reading them, which
# refuses any other file in the same format (a re-pickled copy, a tiny test fixture). SVHN's
# subclass only replaces that check with "the files exist" (scipy reads .mat files without
# unpickling). CIFAR-10 batches are Python pickles, which torchvision would unpickle as they come:
# they are read here by a restricted unpickler that never runs code from the file
# (recurdepth.data.safe_pickle); a downloaded archive is still verified against its md5.
def _read_cifar10(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets.utils import download_and_extract_archive

    from recurdepth.data.safe_pickle import read_cifar_batches

    c = datasets.CIFAR10
    folder = root / c.base_folder
    names = [name for name, _ in (c.train_list if train else c.test_list)]
    if download and not all((folder / n).is_file() for n in names):
        download_and_extract_archive(c.url, str(root), filename=c.filename, md5=c.tgz_md5)
    images, labels = read_cifar_batches([folder / n for n in names])
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


class _SVHN(datasets.SVHN):
    def _check_integrity(self) -> bool:
        return (Path(self.root) / self.filename).is_file()


def dataset_location(name: str, root: str | os.PathLike) -> tuple[Path, list[str]]:
    """Return the folder where data set ``name`` is looked for under ``root`` and its file names."""
    root = Path(root)
    if name == "cifar10":
        names = [name for name, _ in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list]
        return root / datasets.CIFAR10.base_folder, [*names, datasets.CIFAR10.meta["filename"]]
    if name == "svhn":
        return root / "svhn", [datasets.SVHN.split_list[s][1] for s in SPLITS]
    if name == "emnist":
        return root / "EMNIST" / "raw", [
            f"emnist-balanced-{s}-{kind}-ubyte" for s in SPLITS for kind in ("images-idx3", "labels-idx1")
        ]
    if name == "imagenet":
        return root / "imagenet", ["train/<class>/*.JPEG", "val/<class>/*.JPEG"]
    raise ConfigError(choices_message("vision data set", name, (*VISION_DATASETS, "imagenet")))


_SOURCES = {
    "cifar10": "extract cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into {root}",
    "svhn": "place train_32x32.mat and test_32x32.mat (http://ufldl.stanford.edu/housenumbers/) in {folder}",
    "emnist": "unzip the EMNIST gzip.zip (https://www.nist.gov/itl/products-and-services/emnist-dataset) "
    "and put its emnist-balanced-*-ubyte.gz files (gzipped or not) in {folder}",
}


def _split_files(name: str, root: Path, split: str) -> list[Path]:
    """Return the files that split ``split`` of ``name`` needs (either gzipped or plain for EMNIST)."""
    folder, files = dataset_location(name, root)
    if name == "cifar10":
        return [folder / f for f in files]  # torchvision wants all of them for either split
    return [folder / f for f in files if f"{split}_" in f or f"-{split}-" in f]


def _missing_message(name: str, root: Path, problem: str, *, download: bool = False) -> str:
    folder, files = dataset_location(name, root)
    how = _SOURCES[name].format(root=root, folder=folder)
    fetch = ("" if download else
             f"let it download (data.download=true, e.g. `recurdepth train data.name={name} "
             f"model.family=mlp model.effective_depth=3 data.root={root} data.download=true`; "
             f"download=True in Python), or ")
    return (
        f"{name} data set {problem} in {folder} (expected {', '.join(files)}). To fix it, "
        f"{fetch}{how}; or point to a folder that holds it (data.root=DIR for `train`, "
        f"--data-root DIR for `sweep` and `reproduce`)."
    )


def _decompress_emnist(raw: Path, split: str) -> None:
    """Unpack gzipped EMNIST idx files next to themselves, as torchvision's reader wants them plain."""
    for kind in ("images-idx3", "labels-idx1"):
        plain = raw / f"emnist-balanced-{split}-{kind}-ubyte"
        for packed in (plain.with_name(plain.name + ".gz"), raw / "gzip" / (plain.name + ".gz")):
            if not plain.is_file() and packed.is_file():

                def write(tmp: Path, packed: Path = packed) -> None:
                    with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst)

                atomic_write(plain, write)


def _read(name: str, root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split with torchvision; return uint8 (N,C,H,W) images and int64 labels on the CPU."""
    train = split == "train"
    if name == "cifar10":
        return _read_cifar10(root, train, download)
    if name == "svhn":
        # SPEC §2: the `train` split only (73,257 images), not `extra`. torchvision maps label 10 to 0.
        ds = _SVHN(str(root / "svhn"), split=split, download=download)
        return torch.from_numpy(np.ascontiguousarray(ds.data)), torch.from_numpy(ds.labels).long()
    # EMNIST's idx files store each image transposed (column-major) relative to MNIST, and
    # torchvision returns them as stored. Transpose H and W so letters are upright: analyses and
    # feature visualisations then show readable characters. The authors used torchvision's
    # orientation, so their horizontal flip mirrored the upright letters top-to-bottom: the
    # registry's default for EMNIST is therefore vflip (data.vflip=true), not hflip.
    _decompress_emnist(root / "EMNIST" / "raw", split)
    ds = datasets.EMNIST(str(root), split="balanced", train=train, download=download)
    return ds.data.transpose(1, 2).unsqueeze(1).contiguous(), ds.targets.long()


def load_vision_split(
    name: str,
    root: str | os.PathLike,
    split: str,
    *,
    download: bool = False,
    limit: int | None = None,
) -> VisionSplit:
    """Load split ``train``/``test`` of cifar10, svhn or emnist (balanced) from ``root`` as uint8 tensors.

    ``limit`` keeps the first ``limit`` samples (the files' own order). A missing or unreadable data
    set raises DataError naming the folder searched and how to obtain it; ``download=True`` lets
    torchvision fetch it into ``root`` first.
    """
    if name not in VISION_DATASETS:
        raise ConfigError(choices_message("vision data set", name, VISION_DATASETS))
    if split not in SPLITS:
        raise ConfigError(choices_message("split", split, SPLITS))
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1 or None, got {limit}")
    root_path = Path(root).expanduser()
    if not download:
        missing = [
            f.name
            for f in _split_files(name, root_path, split)
            if not f.is_file() and not f.with_name(f.name + ".gz").is_file()
            and not (f.parent / "gzip" / (f.name + ".gz")).is_file()
        ]
        if missing:
            raise DataError(_missing_message(name, root_path, f"not found (missing {', '.join(missing)})"))
    try:
        images, labels = _read(name, root_path, split, download)
    except DataError:
        raise
    except Exception as exc:  # torchvision raises RuntimeError, pickle/scipy/OSError their own
        action = "downloaded or read" if download else "read"
        problem = f"could not be {action} ({type(exc).__name__}: {exc})"
        raise DataError(_missing_message(name, root_path, problem, download=download)) from exc
    info = get_dataset(name)
    expected = (info.in_channels, info.image_size, info.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != expected or len(labels) != len(images):
        raise DataError(
            f"{name} {split} in {dataset_location(name, root_path)[0]} has images {tuple(images.shape)}"
            f" and {len(labels)} labels; expected (N, {', '.join(map(str, expected))}) and N labels"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= info.num_classes):
        raise DataError(
            f"{name} {split} has labels in [{int(labels.min())}, {int(labels.max())}];"
            f" expected 0 .. {info.num_classes - 1}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return VisionSplit(name, split, images, labels, info.num_classes, info.mean, info.std)


def load_tensors(name: str, root: str | os.PathLike, split: str, *, size: int | None = None,
                 limit: int | None = None, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The data-set registry's loader for cifar10, svhn and emnist: uint8 images and labels."""
    vs = load_vision_split(name, root, split, download=download, limit=limit)
    return vs.images, vs.labels


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return the per-channel mean and std of uint8 images (N,C,H,W) scaled to [0, 1]."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1, unbiased=False).tolist())


def imagenet_transform(train: bool, *, image_size: int = 224) -> transforms.Compose:
    """Return the standard ImageNet per-image transform (random-resized crop + flip for training)."""
    info = get_dataset("imagenet")
    mean, std = info.mean, info.std
    if train:
        steps: Sequence = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        # Resize to 256/224 of the crop, centre crop (torchvision reference recipe).
        steps = [transforms.Resize(round(image_size * 256 / 224)), transforms.CenterCrop(image_size)]
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])


def imagenet_loader(
    root: str | os.PathLike,
    split: str,
    *,
    batch_size: int,
    workers: int,
    train: bool,
    image_size: int = 224,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """Return a DataLoader over ``root/imagenet/<split>`` (ImageFolder; ``test`` means ``val``).

    ``train`` selects the augmenting transform and shuffling; ``train=False`` on the train split
    gives train accuracy without augmentation.
    """
    folder_name = {"train": "train", "val": "val", "test": "val"}.get(split)
    if folder_name is None:
        raise ConfigError(choices_message("ImageNet split", split, ("train", "val", "test")))
    folder = Path(root).expanduser() / "imagenet" / folder_name
    if not folder.is_dir():
        raise DataError(
            f"ImageNet {folder_name} split not found: no folder {folder}. Place the ILSVRC-2012 images"
            f" there in ImageFolder layout ({folder}/<class wnid>/<image>.JPEG, one folder per class);"
            " it cannot be downloaded automatically."
        )
    try:
        ds = datasets.ImageFolder(str(folder), transform=imagenet_transform(train, image_size=image_size))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"ImageNet {folder_name} split in {folder} is unusable: {exc}") from exc
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        # Fresh workers every epoch: they are seeded from the loader's generator at start, so an
        # epoch's augmentation can be made to depend on (seed, epoch) only, as after a resume.
        persistent_workers=False,
    )
