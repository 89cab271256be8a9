"""Writers of tiny data sets in the real on-disk formats that torchvision's classes read.

Each writer returns the arrays it wrote (in the layout our loaders return: uint8 (N,C,H,W) images
and int64 labels) so that tests compare what the real loaders read against what was written.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def _images(rng: np.random.Generator, n: int, c: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, c, size, size), dtype=np.uint8)


def write_cifar10(root: Path, *, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict[str, tuple]:
    """Write ``root/cifar-10-batches-py`` as the official pickles (5 train batches, test, meta)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list] = {"train": [[], []], "test": [[], []]}
    for name, split, n in [(b, "train", per_batch) for b in CIFAR10_TRAIN_BATCHES] + [("test_batch", "test", n_test)]:
        images = _images(rng, n, 3, 32)
        labels = rng.integers(0, 10, size=n).tolist()
        # The official batches: 'data' is (N, 3072) uint8, row = R plane, G plane, B plane (row-major
        # 32x32 each); 'labels' a list of ints; keys are str after latin1 decoding.
        entry = {
            "batch_label": f"{name} of 5",
            "labels": labels,
            "data": images.reshape(n, 3 * 32 * 32),
            "filenames": [f"img_{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        out[split][0].append(images)
        out[split][1].extend(labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return {s: (np.concatenate(imgs), np.array(lbl, dtype=np.int64)) for s, (imgs, lbl) in out.items()}


def write_svhn(folder: Path, *, n_train: int = 7, n_test: int = 5, seed: int = 0) -> dict[str, tuple]:
    """Write ``folder/{train,test}_32x32.mat`` in the official layout (X: 32x32x3xN, y: Nx1, 10 = digit 0)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = _images(rng, n, 3, 32)  # (N, C, H, W)
        digits = rng.integers(0, 10, size=n)
        digits[0] = 0  # make sure the 10 -> 0 mapping is exercised
        stored_labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": stored_labels})
        out[split] = (images, digits.astype(np.int64))
    return out


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_emnist(
    root: Path, *, n_train: int = 9, n_test: int = 4, gzipped: bool = True, seed: int = 0
) -> dict[str, tuple]:
    """Write EMNIST balanced idx files into ``root/EMNIST/raw`` (gzipped like the official gzip.zip).

    Like the real files, each image is stored transposed: the returned upright images are (N,1,28,28)
    and the file holds ``upright.transpose(H, W)``.
    """
    rng = np.random.default_rng(seed)
    raw = Path(root) / "EMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        upright = _images(rng, n, 1, 28)
        labels = rng.integers(0, 47, size=n).astype(np.uint8)
        labels[0] = 46  # the largest balanced class
        for kind, array in (("images-idx3", upright[:, 0].transpose(0, 2, 1)), ("labels-idx1", labels)):
            name = f"emnist-balanced-{split}-{kind}-ubyte"
            data = _idx_bytes(array)
            if gzipped:
                with gzip.open(raw / f"{name}.gz", "wb") as f:
                    f.write(data)
            else:
                (raw / name).write_bytes(data)
        out[split] = (upright, labels.astype(np.int64))
    return out


def write_image_folder(
    folder: Path, *, classes: tuple[str, ...] = ("n01", "n02"), per_class: int = 2, size: int = 12, seed: int = 0
) -> dict[str, list[str]]:
    """Write ``folder/<class>/*.JPEG`` and ``*.png`` tiny RGB images (ImageFolder layout)."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[str]] = {}
    for cls in classes:
        (Path(folder) / cls).mkdir(parents=True, exist_ok=True)
        written[cls] = []
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size + 2, 3), dtype=np.uint8)
            name = f"{cls}_{i}.JPEG" if i % 2 == 0 else f"{cls}_{i}.png"
            Image.fromarray(pixels).save(Path(folder) / cls / name, format="JPEG" if name.endswith("JPEG") else "PNG")
            written[cls].append(name)
    return written
