"""Which data a run saw: a fingerprint of the files it reads, stored in its run folder.

Rerunning, extending or resuming a run on other data (another ``data.root``, regenerated mazes)
would mix two data sets in one result; the run folder's ``data.json`` records the fingerprint and
:func:`check_run_data` refuses a different one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from recurdepth.data.mazes.dataset import file_sha256
from recurdepth.errors import DataError
from recurdepth.io import atomic_write_json

DATA_FILE = "data.json"


def maze_files(name: str, root: str, sizes: tuple[int, ...]) -> dict[str, str]:
    """``{file: sha256}`` of the mazes of every size in ``sizes`` under ``root``."""
    files: dict[str, str] = {}
    for size in sorted(set(sizes)):
        files.update(_maze_files(root, int(size)))
    return files


def _maze_files(root: str, size: int) -> dict[str, str]:
    from recurdepth.data.mazes import maze_dir, published_dir
    from recurdepth.data.mazes.dataset import MANIFEST

    ours = maze_dir(root, size)
    if (ours / MANIFEST).is_file():
        try:
            manifest = json.loads((ours / MANIFEST).read_text(encoding="utf-8"))
            # Loading checks each file against these checksums, so they stand for the contents.
            return {f"{ours.name}/{rel}": str(entry["sha256"])
                    for rel, entry in sorted(manifest["files"].items())}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # loading the data reports the problem
    files = {}
    for split in ("train", "test"):
        folder = published_dir(root, size, split)
        for name in ("inputs.npy", "solutions.npy"):
            if (folder / name).is_file():
                files[f"{folder.name}/{name}"] = file_sha256(folder / name)
    return files


def vision_files(name: str, root: str, sizes: tuple[int, ...] = ()) -> dict[str, str]:
    """``{file: sha256}`` of a torchvision data set (ImageNet: its folder and file names)."""
    from recurdepth.data.vision import dataset_location

    folder, names = dataset_location(name, root)
    files = {}
    if name == "imagenet":  # too many images to hash: the class folders and their file names
        for split in ("train", "val"):
            top = folder / split
            if top.is_dir():
                h = hashlib.sha256()
                for cls in sorted(p for p in top.iterdir() if p.is_dir()):
                    h.update(cls.name.encode())
                    for img in sorted(os.listdir(cls)):
                        h.update(b"/" + img.encode())
                files[f"imagenet/{split}"] = h.hexdigest()
        return files
    for n in names:
        for path in (folder / n, folder / f"{n}.gz", folder / "gzip" / f"{n}.gz"):
            if path.is_file():
                files[str(path.relative_to(folder))] = file_sha256(path)
                break
    return files


def data_fingerprint(cfg: Any) -> dict[str, Any] | None:
    """``{"files": {name: sha256}, "digest": ...}`` of the data a resolved config reads (None if
    none of it is present yet)."""
    from recurdepth.data.registry import get_dataset

    files = get_dataset(cfg.data.name).data_files(cfg.data.root, cfg.example_sizes())
    if not files:
        return None
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"dataset": cfg.data.name, "root": str(cfg.data.root), "files": files, "digest": digest}


def recorded_fingerprint(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The fingerprint stored in a run folder, or None."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is unreadable ({e}); restore it or use another run folder") from None
    if not isinstance(data, dict) or not isinstance(data.get("digest"), str):
        raise DataError(f"{path} is not a data fingerprint; restore it or use another run folder")
    return data


def check_run_data(run_dir: str | os.PathLike, cfg: Any) -> dict[str, Any] | None:
    """The fingerprint of ``cfg``'s data; DataError if the run folder recorded other data."""
    now = data_fingerprint(cfg)
    before = recorded_fingerprint(run_dir)
    if now is not None and before is not None and now["digest"] != before["digest"]:
        old, new = before.get("files", {}), now["files"]
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise DataError(f"run folder {run_dir} was trained on other data than {cfg.data.root} "
                        f"holds now (differing: {', '.join(changed[:4]) or 'file set'}); point "
                        f"data.root at the data it was trained on (recorded root: "
                        f"{before.get('root')}), or use another run folder")
    return now


def record_run_data(run_dir: str | os.PathLike, fingerprint: dict[str, Any] | None) -> None:
    """Store ``fingerprint`` in the run folder (once: it never changes for a run)."""
    if fingerprint is not None and not (Path(run_dir) / DATA_FILE).exists():
        atomic_write_json(Path(run_dir) / DATA_FILE, fingerprint)


__all__ = ["DATA_FILE", "check_run_data", "data_fingerprint", "maze_files", "record_run_data",
           "recorded_fingerprint", "vision_files"]
