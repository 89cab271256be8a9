"""Maze data sets on disk: build (atomically, with a manifest and checksums), verify and load.

Layout of a data set folder (``maze_dir(root, size)`` by default), the easy-to-hard-data v1 layout
plus a manifest::

    mazes_9/manifest.json
    mazes_9/train/inputs.npy      uint8 (N, 3, H, W), 0 / 255
    mazes_9/train/solutions.npy   uint8 (N, H, W), 0 / 1
    mazes_9/test/...

Published easy-to-hard-data v1 folders (``root/maze_data_<split>_<size>/``, no manifest, float or
uint8) load too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recurdepth import __version__
from recurdepth.data.mazes.generate import (
    GENERATOR_VERSION,
    SPLITS,
    MazeGenerator,
    check_dfs_root,
    check_size,
    image_side,
    path_length_stats,
    path_lengths_from_solutions,
)
from recurdepth.errors import ConfigError, DataError, choices_message
from recurdepth.io import atomic_write_json
from recurdepth.locks import writer_lock

MANIFEST = "manifest.json"
FORMAT = "recurdepth-mazes"
ARRAYS = ("inputs", "solutions")
# The manifest entries that define a data set: equal ones mean "the same data set".
IDENTITY_KEYS = ("format", "generator_version", "size", "seed", "dfs_root", "counts")


def maze_dir(root: str | os.PathLike, size: int) -> Path:
    """The default folder of the generated maze data set of size ``size`` under ``root``."""
    return Path(root) / f"mazes_{size}"


def published_dir(root: str | os.PathLike, size: int, split: str) -> Path:
    """The folder of a published easy-to-hard-data v1 split: ``root/maze_data_<split>_<size>``."""
    return Path(root) / f"maze_data_{split}_{size}"


@dataclass
class MazeSplit:
    """One split of a maze data set: uint8 inputs (N,3,H,W) 0/255 and solutions (N,H,W) 0/1."""

    inputs: np.ndarray
    solutions: np.ndarray
    size: int
    split: str = "train"
    source: Path | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def path_lengths(self) -> np.ndarray:
        """Shortest-path length of every maze in cell steps."""
        return path_lengths_from_solutions(self.solutions)

    def to_tensors(self, device: Any = "cpu") -> tuple[Any, Any]:
        """The whole split as compact uint8 tensors on ``device``: inputs (N,3,H,W) 0/255 and
        solutions (N,H,W) 0/1; convert per batch (x / 255, y.long()) to save device memory."""
        import torch

        return (torch.from_numpy(self.inputs).to(device), torch.from_numpy(self.solutions).to(device))

    def torch_dataset(self) -> Any:
        """A ``torch.utils.data.Dataset`` yielding (float input in [0, 1] (3,H,W), int64 target (H,W))."""
        from recurdepth.data.mazes.torch_data import MazeTorchDataset

        return MazeTorchDataset(self)


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


class _NpyStream:
    """Writes a uint8 .npy file of known shape chunk by chunk, hashing (SHA-256) as it goes."""

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self.path, self.shape, self.rows = path, shape, 0
        self.sha = hashlib.sha256()
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": shape})
        self.file = open(path, "wb")
        self._write(header.getvalue())

    def _write(self, data: Any) -> None:
        self.sha.update(data)
        self.file.write(data)

    def write(self, chunk: np.ndarray) -> None:
        assert chunk.dtype == np.uint8 and chunk.shape[1:] == self.shape[1:]
        self._write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
        self.rows += chunk.shape[0]

    def close(self) -> dict:
        """Flush to disk and return the manifest entry of the file."""
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows of {self.shape[0]}")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.path.stat().st_size,
                "shape": list(self.shape), "dtype": "uint8"}


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable maze manifest ({e}); delete {folder} and generate it again "
                        f"with `recurdepth mazes generate`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a recurdepth maze manifest (format should be {FORMAT!r})")
    return manifest


def dataset_identity(size: int, n_train: int, n_test: int, seed: int, dfs_root: str = "start") -> dict:
    """The manifest entries that define a data set (equal entries: the same bytes)."""
    return {"format": FORMAT, "generator_version": GENERATOR_VERSION, "size": size, "seed": seed,
            "dfs_root": dfs_root, "counts": {"train": n_train, "test": n_test}}


def existing_dataset(out_dir: str | os.PathLike, identity: dict) -> bool:
    """True if ``out_dir`` already holds exactly the data set ``identity`` describes, False if
    ``out_dir`` is missing or an empty folder; DataError if it holds anything else."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a folder: choose another --out")
    if not (out_dir / MANIFEST).exists():
        if any(out_dir.iterdir()):
            raise DataError(f"{out_dir} exists and is not an empty folder nor a maze data set: choose "
                            f"another --out or delete it")
        return False
    manifest = _read_manifest(out_dir)
    theirs = {k: manifest.get(k) for k in IDENTITY_KEYS}
    if theirs != identity:
        diff = ", ".join(f"{k} {theirs[k]!r} (asked {identity[k]!r})" for k in IDENTITY_KEYS
                         if theirs[k] != identity[k])
        raise DataError(f"{out_dir} already holds a different maze data set: {diff}; choose another "
                        f"--out or delete it")
    return True


def generate_dataset(out_dir: str | os.PathLike, *, size: int, n_train: int = 50000, n_test: int = 10000,
                     seed: int = 0, progress: bool = True, dfs_root: str = "start",
                     threads: int | None = 1) -> Path:
    """Generate, dedupe and store train and test splits with a manifest; return ``out_dir``.

    Everything is written into a temporary folder beside ``out_dir`` that is renamed onto it only
    when complete, so an interrupted run never leaves a data set that looks finished. An existing
    identical data set is left as it is; an existing different one is refused (DataError).
    """
    size = check_size(size)
    check_dfs_root(dfs_root)
    for name, n in (("train", n_train), ("test", n_test)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"--{name} must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    out_dir = Path(out_dir)
    identity = dataset_identity(size, int(n_train), int(n_test), int(seed), dfs_root)
    if existing_dataset(out_dir, identity):
        return out_dir
    gen = MazeGenerator(size, seed=int(seed), dfs_root=dfs_root, threads=threads)
    gen.check_count(int(n_train) + int(n_test))
    _check_disk(out_dir, size, int(n_train) + int(n_test))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # One writer per output: the lock sits beside the folder (which appears by a rename), and
    # its holder removes the temporary folders of a killed writer.
    with writer_lock(out_dir, "maze data set", lock_file=out_dir.parent / f".{out_dir.name}.lock",
                     stale=(f".{out_dir.name}.tmp-*",), stale_in=out_dir.parent, remove=True):
        if existing_dataset(out_dir, identity):  # written meanwhile by the previous holder
            return out_dir
        return _write_dataset(out_dir, gen, identity, size=size, n_train=int(n_train),
                              n_test=int(n_test), progress=progress)


def _check_disk(out_dir: Path, size: int, count: int) -> None:
    """ConfigError when the data set would not fit on the disk of ``out_dir``."""
    side = image_side(size)
    need = count * 4 * side * side  # uint8 inputs (3 planes) + solutions
    probe = next((p for p in (out_dir, *out_dir.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if need > free:
        raise ConfigError(f"{count:,} mazes of size {size} need {need / 2**30:,.1f} GiB, more than "
                          f"the {free / 2**30:,.1f} GiB free under {probe}; generate fewer or "
                          f"smaller mazes, or choose another --out")


def _write_dataset(out_dir: Path, gen: MazeGenerator, identity: dict, *, size: int, n_train: int,
                   n_test: int, progress: bool) -> Path:
    """Generate into a temporary folder beside ``out_dir`` and rename it into place."""
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    bar = _progress_bar(int(n_train) + int(n_test), f"mazes {size}x{size}", progress)
    try:
        side = image_side(size)
        files: dict[str, dict] = {}
        splits: dict[str, dict] = {}
        for split, n in (("train", int(n_train)), ("test", int(n_test))):
            (tmp / split).mkdir()
            # Streamed to disk batch by batch: the split never sits in memory as a whole.
            inputs = _NpyStream(tmp / split / "inputs.npy", (n, 3, side, side))
            solutions = _NpyStream(tmp / split / "solutions.npy", (n, side, side))
            lengths = []
            try:
                for chunk in gen.chunks(split, n):
                    inputs.write(chunk.inputs)
                    solutions.write(chunk.solutions)
                    lengths.append(chunk.path_lengths.copy())
                    bar.update(len(chunk.path_lengths))
                files[f"{split}/inputs.npy"] = inputs.close()
                files[f"{split}/solutions.npy"] = solutions.close()
            finally:
                inputs.file.close()
                solutions.file.close()
            stats = path_length_stats(np.concatenate(lengths) if lengths else np.zeros(0, np.int32))
            splits[split] = {"drawn": gen.last["drawn"], "duplicates_removed": gen.last["duplicates"],
                             "overlap_removed": gen.last["overlaps"], "path_length": stats}
        manifest = {**identity, "image_size": image_side(size), "cells_per_side": (size + 1) // 2,
                    "created_by": f"recurdepth {__version__}", "files": files, "splits": splits}
        atomic_write_json(tmp / MANIFEST, manifest)
        if out_dir.exists():  # an empty folder (checked above)
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    finally:
        bar.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


class _NoProgress:
    """The progress bar of a run without one (``--no-progress``)."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()  # without importing tqdm: ~20 ms of a command that takes ~0.8 s
    from tqdm.auto import tqdm

    from recurdepth.progress import bar_disable

    return tqdm(total=total, desc=desc, unit="maze", disable=bar_disable(enabled), unit_scale=True)


def _load_npy(path: Path, limit: int | None) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.array(array[:limit] if limit is not None else array)
    except FileNotFoundError:
        raise DataError(f"{path}: missing file") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt or truncated .npy file ({e}); delete the data set and "
                        f"generate it again") from None


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 0):
        raise ConfigError(f"limit must be a non-negative integer or None, got {limit!r}")
    return None if limit is None else int(limit)


def load_dataset_split(folder: str | os.PathLike, split: str, *, limit: int | None = None,
                       verify: bool = True) -> MazeSplit:
    """Load ``split`` of a data set folder written by :func:`generate_dataset`, checking it against
    its manifest (sizes, shapes and, with ``verify``, SHA-256 checksums)."""
    folder = Path(folder)
    if split not in SPLITS:
        raise ConfigError(choices_message("split", split, SPLITS))
    limit = _check_limit(limit)
    manifest = _read_manifest(folder)
    arrays = {}
    for name in ARRAYS:
        rel = f"{split}/{name}.npy"
        entry = manifest.get("files", {}).get(rel)
        path = folder / rel
        if entry is None:
            raise DataError(f"{folder / MANIFEST}: no entry for {rel}")
        if not path.exists():
            raise DataError(f"{path}: missing file listed in the manifest; generate the data set again")
        if path.stat().st_size != entry["bytes"]:
            raise DataError(f"{path}: {path.stat().st_size:,} bytes, the manifest says {entry['bytes']:,} "
                            f"(truncated or replaced); delete {folder} and generate it again")
        if verify and file_sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: checksum mismatch with the manifest (corrupt file); delete "
                            f"{folder} and generate it again")
        array = _load_npy(path, limit)
        expect = entry["shape"][1:]
        if list(array.shape[1:]) != expect or array.dtype != np.uint8:
            raise DataError(f"{path}: shape {array.shape} dtype {array.dtype}, the manifest says "
                            f"{entry['shape']} {entry['dtype']}")
        arrays[name] = array
    _check_split_form(folder, split, manifest, arrays, limit)
    return MazeSplit(arrays["inputs"], arrays["solutions"], int(manifest["size"]), split, folder / split)


def _check_split_form(folder: Path, split: str, manifest: dict, arrays: dict[str, np.ndarray],
                      limit: int | None) -> None:
    """DataError unless the arrays agree with each other and with the manifest's size and counts
    (an edited manifest or swapped files would otherwise train on the wrong thing)."""
    inputs, solutions = arrays["inputs"], arrays["solutions"]
    where = f"{folder / split}"
    try:
        size = check_size(manifest["size"])
        count = int(manifest["counts"][split])
    except (KeyError, TypeError, ValueError, ConfigError):
        raise DataError(f"{folder / MANIFEST}: missing or invalid size/counts; delete {folder} and "
                        f"generate it again") from None
    side = image_side(size)
    if inputs.ndim != 4 or inputs.shape[1:] != (3, side, side) or solutions.ndim != 3 \
            or solutions.shape[1:] != (side, side) or len(inputs) != len(solutions):
        raise DataError(f"{where}: inputs {inputs.shape} and solutions {solutions.shape} do not fit "
                        f"mazes of size {size} (expected (N, 3, {side}, {side}) and (N, {side}, "
                        f"{side})); delete {folder} and generate it again")
    if len(inputs) != (count if limit is None else min(count, limit)):
        raise DataError(f"{where}: {len(inputs):,} mazes, the manifest says {count:,}; delete "
                        f"{folder} and generate it again")
    if solutions.size and int(solutions.max()) > 1:
        raise DataError(f"{where}/solutions.npy: values above 1 (expected a 0/1 path mask)")


def load_published_split(folder: str | os.PathLike, size: int, split: str = "train", *,
                         limit: int | None = None) -> MazeSplit:
    """Load an easy-to-hard-data v1 split folder (inputs.npy (N,3,H,W), solutions.npy (N,H,W);
    float in [0, 1] or uint8) as uint8 0/255 inputs and 0/1 solutions."""
    folder = Path(folder)
    limit = _check_limit(limit)
    inputs = _load_npy(folder / "inputs.npy", limit)
    solutions = _load_npy(folder / "solutions.npy", limit)
    if inputs.ndim != 4 or inputs.shape[1] != 3 or solutions.ndim != 3 \
            or inputs.shape[0] != solutions.shape[0] or inputs.shape[2:] != solutions.shape[1:]:
        raise DataError(f"{folder}: expected inputs (N,3,H,W) and solutions (N,H,W), got "
                        f"{inputs.shape} and {solutions.shape}")
    return MazeSplit(_to_uint8(inputs, 255, folder / "inputs.npy"),
                     _to_uint8(solutions, 1, folder / "solutions.npy"), size, split, folder)


def _to_uint8(array: np.ndarray, high: int, path: Path) -> np.ndarray:
    # Published arrays hold 0/1 floats; ours hold 0/255 inputs and 0/1 solutions.
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: dtype {array.dtype}, expected float or uint8 values")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{path}: holds NaN or infinite values; replace the file")
    top = float(array.max())
    if float(array.min()) < 0 or top > 255 or (array.dtype.kind == "f" and top > 1.0 + 1e-6):
        raise DataError(f"{path}: values in [{float(array.min())}, {top}], expected 0..1 (float) or "
                        f"0..255 (uint8)")
    scale = high / 255.0 if top > 1.0 + 1e-6 else float(high)
    return np.rint(array.astype(np.float32) * scale).astype(np.uint8)


def load_maze_split(root: str | os.PathLike, size: int, split: str, *, limit: int | None = None,
                    verify: bool = True) -> MazeSplit:
    """Load ``split`` of the mazes of size ``size`` under ``root``: our generated data set
    (``maze_dir(root, size)``, checked against its manifest) or a published easy-to-hard-data v1
    folder ``root/maze_data_<split>_<size>``."""
    size = check_size(size)
    if split not in SPLITS:
        raise ConfigError(choices_message("split", split, SPLITS))
    ours = maze_dir(root, size)
    if (ours / MANIFEST).exists():
        loaded = load_dataset_split(ours, split, limit=limit, verify=verify)
        if loaded.size != size:
            raise DataError(f"{ours / MANIFEST} says size {loaded.size}, but the folder is for size "
                            f"{size}; delete {ours} and generate it again")
        return loaded
    published = published_dir(root, size, split)
    if (published / "inputs.npy").exists():
        loaded = load_published_split(published, size, split, limit=limit)
        side = image_side(size)
        if loaded.inputs.shape[2:] != (side, side):
            raise DataError(f"{published}: images of {loaded.inputs.shape[2]}x"
                            f"{loaded.inputs.shape[3]} px, but mazes of size {size} are {side}x"
                            f"{side} px; check the folder")
        return loaded
    raise DataError(f"no maze data of size {size} under {root} (looked for {ours / MANIFEST} and "
                    f"{published / 'inputs.npy'}); run `recurdepth mazes generate --size {size} --out "
                    f"{ours}`")


def open_maze_folder(folder: str | os.PathLike, *, verify: bool = True) -> dict[str, MazeSplit]:
    """Every split in ``folder``: a data set of ours (train and test) or one published split."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return {s: load_dataset_split(folder, s, verify=verify) for s in SPLITS}
    if (folder / "inputs.npy").exists():
        parts = folder.name.split("_")  # maze_data_<split>_<size>
        split = parts[-2] if len(parts) >= 2 and parts[-2] in SPLITS else "train"
        size = int(parts[-1]) if parts[-1].isdigit() else _size_from_side(folder)
        return {split: load_published_split(folder, size, split)}
    raise DataError(f"{folder}: no maze data set here (no {MANIFEST} nor inputs.npy); run "
                    f"`recurdepth mazes generate --size S --out {folder}`")


def _size_from_side(folder: Path) -> int:
    shape = np.load(folder / "inputs.npy", mmap_mode="r").shape
    return int(shape[-1]) // 2 - 3


def dataset_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a data set folder of ours, or None for a published folder."""
    folder = Path(folder)
    return _read_manifest(folder) if (folder / MANIFEST).exists() else None



def maze_data_present(name: str, root: str | os.PathLike, size: int) -> bool:
    """The data-set registry's check for mazes: a generated or published set of ``size`` exists."""
    return ((maze_dir(root, size) / MANIFEST).is_file()
            or (published_dir(root, size, "test") / "inputs.npy").is_file())


def prepare_maze_data(name: str, root: str | os.PathLike, size: int, *, progress: bool = True,
                      n_train: int = 50000, n_test: int = 10000, seed: int = 0) -> None:
    """The data-set registry's preparer for mazes: generate train/test splits of ``size``."""
    if progress:
        from tqdm import tqdm

        tqdm.write(f"generating mazes of size {size} under {root} ({n_train} train, {n_test} test)")
    generate_dataset(maze_dir(root, size), size=size, n_train=int(n_train), n_test=int(n_test),
                     seed=int(seed), progress=progress)


def load_tensors(name: str, root: str | os.PathLike, split: str, *, size: int | None = None,
                 limit: int | None = None, download: bool = False) -> tuple[Any, Any]:
    """The data-set registry's loader for mazes: uint8 inputs (N,3,H,W) and int64 solutions."""
    import torch

    if size is None:
        raise ConfigError("maze data sets need a maze size (data.options.size)")
    ms = load_maze_split(root, size, split, limit=limit)
    return torch.from_numpy(ms.inputs), torch.from_numpy(ms.solutions).long()
