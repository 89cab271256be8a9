"""Maze data sets on disk: atomic writes, manifest checks, corrupt files, published folders, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recurdepth.cli import main
from recurdepth.data.mazes import (
    MazeGenerator,
    generate_dataset,
    load_maze_split,
    maze_dir,
    published_dir,
)
from recurdepth.data.mazes import dataset as dataset_module
from recurdepth.data.mazes.stats import duplicate_count, overlap_count
from recurdepth.errors import DataError


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    out = generate_dataset(maze_dir(root, 9), size=9, n_train=300, n_test=100, seed=4, progress=False)
    return root, out


def test_maze_dir():
    assert str(maze_dir("data", 13)) == "data/mazes_13"


def test_roundtrip_matches_the_generator(small_set):
    root, out = small_set
    gen = MazeGenerator(9, seed=4)
    for split, n in (("train", 300), ("test", 100)):
        expected = gen.split(split, n)
        loaded = load_maze_split(root, 9, split)
        assert loaded.size == 9 and len(loaded) == n
        assert loaded.inputs.dtype == np.uint8 and loaded.inputs.shape == (n, 3, 24, 24)
        assert loaded.solutions.dtype == np.uint8 and loaded.solutions.shape == (n, 24, 24)
        assert np.array_equal(loaded.inputs, expected.inputs)
        assert np.array_equal(loaded.solutions, expected.solutions)
        assert np.array_equal(loaded.path_lengths(), expected.path_lengths)
    assert len(load_maze_split(root, 9, "test", limit=7)) == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["size"] == 9 and manifest["counts"] == {"train": 300, "test": 100}
    assert manifest["image_size"] == 24 and manifest["seed"] == 4
    pl = manifest["splits"]["train"]["path_length"]
    assert pl["count"] == 300 and sum(pl["histogram"].values()) == 300
    assert set(manifest["files"]) == {f"{s}/{a}.npy" for s in ("train", "test") for a in ("inputs", "solutions")}


def test_same_seed_same_bytes(tmp_path, small_set):
    _, out = small_set
    again = generate_dataset(tmp_path / "again", size=9, n_train=300, n_test=100, seed=4, progress=False)
    for rel in ("train/inputs.npy", "train/solutions.npy", "test/inputs.npy", "test/solutions.npy"):
        assert (again / rel).read_bytes() == (out / rel).read_bytes()


def test_existing_output_folders(tmp_path, small_set):
    _, out = small_set
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert generate_dataset(out, size=9, n_train=300, n_test=100, seed=4, progress=False) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing rewritten
    with pytest.raises(DataError, match="different maze data set: seed 4 \\(asked 5\\)"):
        generate_dataset(out, size=9, n_train=300, n_test=100, seed=5, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        generate_dataset(other, size=9, n_train=3, n_test=1, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_dataset(empty, size=5, n_train=3, n_test=1, progress=False)
    assert (empty / "manifest.json").exists()


def test_impossible_count_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match="only 24 distinct mazes"):
        generate_dataset(tmp_path / "m3", size=3, n_train=20, n_test=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_write(self, chunk):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset_module._NpyStream, "write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "m9", size=9, n_train=10, n_test=5, progress=False)
    assert calls and list(tmp_path.iterdir()) == []


def _copy_set(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupt_files_are_refused(tmp_path, small_set):
    _, out = small_set
    bad = _copy_set(out, maze_dir(tmp_path, 9))
    path = bad / "train" / "inputs.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_maze_split(tmp_path, 9, "train")
    assert len(load_maze_split(tmp_path, 9, "train", verify=False)) == 300
    path.write_bytes(bytes(data[:-100]))
    with pytest.raises(DataError, match="truncated"):
        load_maze_split(tmp_path, 9, "train")
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable maze manifest"):
        load_maze_split(tmp_path, 9, "test")


def test_missing_data_says_how_to_generate(tmp_path):
    with pytest.raises(DataError, match="recurdepth mazes generate --size 11"):
        load_maze_split(tmp_path, 11, "train")


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
def test_published_folders_load(tmp_path, small_set, dtype):
    root, _ = small_set
    ours = load_maze_split(root, 9, "test")
    folder = published_dir(tmp_path, 9, "test")
    folder.mkdir()
    scale = 255 if dtype == "uint8" else 1
    np.save(folder / "inputs.npy", (ours.inputs // 255 * scale).astype(dtype))
    np.save(folder / "solutions.npy", ours.solutions.astype(dtype))
    loaded = load_maze_split(tmp_path, 9, "test", limit=50)
    assert loaded.inputs.dtype == np.uint8 and loaded.solutions.dtype == np.uint8
    assert np.array_equal(loaded.inputs, ours.inputs[:50])
    assert np.array_equal(loaded.solutions, ours.solutions[:50])
    (folder / "solutions.npy").write_bytes((folder / "solutions.npy").read_bytes()[:-40])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_maze_split(tmp_path, 9, "test")


def test_torch_views(small_set):
    root, _ = small_set
    split = load_maze_split(root, 9, "train")
    x, y = split.to_tensors()
    assert x.dtype == torch.uint8 and x.shape == (300, 3, 24, 24) and y.shape == (300, 24, 24)
    ds = split.torch_dataset()
    xi, yi = ds[3]
    assert len(ds) == 300 and xi.dtype == torch.float32 and yi.dtype == torch.int64
    assert torch.equal(xi, x[3].float() / 255) and torch.equal(yi, y[3].long())


def test_duplicate_and_overlap_counts():
    a = np.arange(4 * 3 * 2 * 2, dtype=np.uint8).reshape(4, 3, 2, 2)
    arr = np.concatenate([a, a[[0, 0, 2]]])
    assert duplicate_count(arr) == 3
    assert overlap_count(a[[1, 3]], arr) == 2 and overlap_count(a[:2] + 1, a[:1]) == 0


def test_cli(tmp_path, capsys):
    out = tmp_path / "m9"
    assert main(["mazes", "generate", "--size", "9", "--train", "200", "--test", "50", "--out", str(out),
                 "--no-progress"]) == 0
    assert main(["mazes", "generate", "--size", "9", "--train", "200", "--test", "50", "--out", str(out),
                 "--no-progress"]) == 0
    assert "already exists, nothing to do" in capsys.readouterr().out
    assert main(["mazes", "generate", "--size", "9", "--train", "201", "--out", str(out)]) == 2
    assert "different maze data set" in capsys.readouterr().err
    assert main(["mazes", "generate", "--size", "10", "--out", str(tmp_path / "x")]) == 2
    assert "odd integer" in capsys.readouterr().err
    assert main(["mazes", "show", str(out), "--count", "4", "--out", str(out / "x.png")]) == 2
    assert "inside the data set" in capsys.readouterr().err
    assert main(["mazes", "show", str(out), "--count", "4", "--out", str(tmp_path / "ex.png")]) == 0
    assert (tmp_path / "ex.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.png"))  # nothing written into the data set
    assert main(["mazes", "stats", str(out), "--out", str(tmp_path / "h.png")]) == 0
    text = capsys.readouterr().out
    assert "duplicates 0" in text and "overlap with train 0" in text and "mean" in text
    assert (tmp_path / "h.png").exists()
