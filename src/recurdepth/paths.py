"""Names stay inside their folders: a run or experiment name is one plain path component."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from recurdepth.errors import ConfigError

MAX_NAME_LENGTH = 200
# Letters, digits and . _ - + = , @ only: no separators, no shell or terminal surprises.
_NAME = re.compile(r"[A-Za-z0-9._+=,@-]+")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a single plain path component; ConfigError saying why not."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what} must be a non-empty name, got {name!r}")
    if name in (".", "..") or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"{what} {name!r} is not a plain name: use at most {MAX_NAME_LENGTH} "
                          f"letters, digits and . _ - + = , @ (no '/', no '..'), e.g. my_run_s0")
    return name


def folder_arg(text: str) -> Path:
    """argparse ``type`` for an output folder: refuses the empty string (the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name would write into the current "
                                         "folder; give a folder such as runs/my_run")
    return Path(text)


__all__ = ["MAX_NAME_LENGTH", "check_name", "folder_arg"]
