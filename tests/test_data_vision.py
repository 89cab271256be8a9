"""Vision data sets: tiny files in the real on-disk formats read through torchvision's classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets

from fixtures_data import write_cifar10, write_emnist, write_image_folder, write_svhn
from recurdepth.data.augment import TensorBatches, default_augment
from recurdepth.data.registry import get_dataset
from recurdepth.data.vision import (
    VISION_DATASETS,
    channel_stats,
    imagenet_loader,
    load_vision_split,
)
from recurdepth.errors import ConfigError, DataError


def _check(split, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
    assert split.images.shape == images.shape
    assert torch.equal(split.images, torch.from_numpy(images))
    assert torch.equal(split.labels, torch.from_numpy(labels))
    assert split.num_classes == get_dataset(name).num_classes
    assert (split.mean, split.std) == (get_dataset(name).mean, get_dataset(name).std)


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_pickles(tmp_path: Path, split: str) -> None:
    written = write_cifar10(tmp_path)
    loaded = load_vision_split("cifar10", tmp_path, split)
    _check(loaded, *written[split], "cifar10")
    assert len(loaded) == (20 if split == "train" else 6)  # 5 batches of 4; test 6


def test_cifar10_channel_order(tmp_path: Path) -> None:
    """A pure-red image stays red: the (N, 3072) rows are R, G, B planes."""
    write_cifar10(tmp_path, per_batch=1, n_test=1)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    import pickle

    entry = pickle.loads(batch.read_bytes())
    red = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    red[:, 0] = 200
    entry["data"] = red.reshape(1, -1)
    batch.write_bytes(pickle.dumps(entry))
    loaded = load_vision_split("cifar10", tmp_path, "test")
    assert loaded.images[0, 0].eq(200).all() and loaded.images[0, 1:].eq(0).all()


def test_cifar10_batch_with_bytes_keys_reads_the_same(tmp_path: Path) -> None:
    """A batch re-saved from ``pickle.load(f, encoding="bytes")`` (keys b"data", b"labels")."""
    import pickle

    written = write_cifar10(tmp_path, per_batch=1, n_test=3)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(batch.read_bytes())
    batch.write_bytes(pickle.dumps({k.encode(): v for k, v in entry.items()}, protocol=2))
    _check(load_vision_split("cifar10", tmp_path, "test"), *written["test"], "cifar10")


@pytest.mark.parametrize("split", ["train", "test"])
def test_svhn_mat(tmp_path: Path, split: str) -> None:
    written = write_svhn(tmp_path / "svhn")
    loaded = load_vision_split("svhn", tmp_path, split)
    _check(loaded, *written[split], "svhn")
    assert int(loaded.labels[0]) == 0  # stored as 10


@pytest.mark.parametrize("gzipped", [True, False])
def test_emnist_idx_upright(tmp_path: Path, gzipped: bool) -> None:
    written = write_emnist(tmp_path, gzipped=gzipped)
    for split in ("train", "test"):
        loaded = load_vision_split("emnist", tmp_path, split)
        _check(loaded, *written[split], "emnist")
    # torchvision itself returns the stored (transposed) orientation; ours is its transpose.
    raw = datasets.EMNIST(str(tmp_path), split="balanced", train=True)
    assert torch.equal(raw.data.transpose(1, 2), load_vision_split("emnist", tmp_path, "train").images[:, 0])
    assert int(load_vision_split("emnist", tmp_path, "test").labels[0]) == 46


def test_limit_keeps_first_samples(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    loaded = load_vision_split("cifar10", tmp_path, "train", limit=7)
    assert torch.equal(loaded.images, torch.from_numpy(written["train"][0][:7]))
    assert loaded.labels.tolist() == written["train"][1][:7].tolist()


@pytest.mark.parametrize(
    "name,folder", [("cifar10", "cifar-10-batches-py"), ("svhn", "svhn"), ("emnist", "EMNIST/raw")]
)
def test_missing_data_set_says_where_and_how(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(DataError) as err:
        load_vision_split(name, tmp_path, "train")
    message = str(err.value)
    assert str(tmp_path / folder) in message
    assert "data.download=true" in message and "not found" in message


def test_corrupt_or_wrong_files_give_data_error(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="could not be read"):
        load_vision_split("cifar10", tmp_path, "train")
    write_svhn(tmp_path / "svhn")
    import scipy.io

    bad_labels = {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[11], [1]], np.uint8)}
    scipy.io.savemat(tmp_path / "svhn" / "test_32x32.mat", bad_labels)
    with pytest.raises(DataError, match="labels in"):
        load_vision_split("svhn", tmp_path, "test")


def test_unknown_name_or_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cifar10, svhn, emnist"):
        load_vision_split("mnist", tmp_path, "train")
    with pytest.raises(ConfigError, match="train, test"):
        load_vision_split("cifar10", tmp_path, "extra")


def test_normalisation_table_matches_channels() -> None:
    for name in (*VISION_DATASETS, "imagenet"):
        mean, std = get_dataset(name).mean, get_dataset(name).std
        assert len(mean) == len(std) == get_dataset(name).in_channels
        assert all(0 < m < 1 for m in mean) and all(0 < s < 0.5 for s in std)


def test_channel_stats() -> None:
    images = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8)
    mean, std = channel_stats(images)
    arr = images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, arr.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, arr.std(axis=(0, 2, 3)), rtol=1e-12)


def test_split_feeds_tensor_batches(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    split = load_vision_split("cifar10", tmp_path, "train")
    batches = TensorBatches(
        split.images, split.labels, batch_size=8, shuffle=True,
        augment=default_augment("cifar10"), mean=split.mean, std=split.std,
    )
    x, y = next(iter(batches))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # Zero-padded pixels become -mean/std after normalisation; real ones lie within the range.
    low = torch.tensor([-m / s for m, s in zip(split.mean, split.std)]).view(1, 3, 1, 1)
    high = torch.tensor([(1 - m) / s for m, s in zip(split.mean, split.std)]).view(1, 3, 1, 1)
    assert (x >= low - 1e-5).all() and (x <= high + 1e-5).all()


def test_imagenet_folder(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imagenet" / "train", classes=("n01", "n02"), per_class=2)
    write_image_folder(tmp_path / "imagenet" / "val", classes=("n01", "n02"), per_class=1, seed=1)
    train = imagenet_loader(tmp_path, "train", batch_size=4, workers=0, train=True, image_size=16)
    assert train.dataset.classes == ["n01", "n02"] and len(train.dataset) == 4
    x, y = next(iter(train))
    assert x.shape == (4, 3, 16, 16) and sorted(y.tolist()) == [0, 0, 1, 1]
    val = imagenet_loader(tmp_path, "test", batch_size=2, workers=0, train=False, image_size=16)
    (a, ya), (b, _) = next(iter(val)), next(iter(val))
    assert torch.equal(a, b) and ya.tolist() == [0, 1]  # no augmentation, no shuffling
    with pytest.raises(DataError, match="ImageFolder layout"):
        imagenet_loader(tmp_path / "elsewhere", "train", batch_size=2, workers=0, train=True)


@pytest.mark.parametrize("name", ["cifar10", "svhn", "emnist"])
def test_missing_data_message_suggests_a_valid_command(tmp_path: Path, name: str) -> None:
    from recurdepth.training.config import load_config, resolve_on

    with pytest.raises(DataError) as err:
        load_vision_split(name, tmp_path, "train")
    command = str(err.value).split("`")[1].split()
    assert command[:2] == ["recurdepth", "train"] and "data.download=true" in command
    cfg = resolve_on(load_config(None, command[2:]), "cpu")  # raises if the command is invalid
    assert cfg.data.name == name and cfg.data.download is True
