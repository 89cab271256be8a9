"""One writer per folder: an advisory lock recording who holds it, and clean-up after a crash.

``writer_lock(folder, what)`` takes an exclusive ``fcntl.flock`` on a lock file and writes the
holder's pid, host and command into it. A second writer gets a :class:`LockedError` naming the
holder. The kernel drops the lock when its process dies, so a lock left by a killed writer (a dead
pid) is simply taken over. Readers (report, eval) take no lock. While holding the lock, the writer
removes the temporary files and folders that a killed writer of the same folder left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from recurdepth.errors import RecurDepthError

LOCK_NAME = ".lock"
# Temporary names written by recurdepth.io.atomic_write and the results database.
TEMP_PATTERNS = (".*.tmp", ".*.tmp-journal")


class LockedError(RecurDepthError):
    """Another process is writing the folder."""


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8"))
        return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')} "
                f"({info.get('command')})")
    except (OSError, ValueError, AttributeError):
        return "another process"


def remove_stale_temp(folder: Path, patterns: Sequence[str]) -> list[Path]:
    """Delete files or folders in ``folder`` matching ``patterns`` (left by a killed writer)."""
    removed = []
    if not folder.is_dir():
        return removed
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def writer_lock(folder: str | os.PathLike, what: str, *, lock_file: str | os.PathLike | None = None,
                stale: Sequence[str] = TEMP_PATTERNS,
                stale_in: str | os.PathLike | None = None,
                remove: bool = False) -> Iterator[Path]:
    """Hold the write lock of ``folder`` (``folder/.lock`` unless ``lock_file``) for the block.

    On entry, leftovers matching ``stale`` in ``stale_in`` (default ``folder``) are removed. A
    second writer gets a LockedError naming the holder and ``what`` (e.g. "run folder").
    ``remove`` deletes the lock file on release (for a lock beside, not inside, the output).
    """
    folder = Path(folder)
    lock_path = Path(lock_file) if lock_file is not None else folder / LOCK_NAME
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield lock_path
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A holder that removes its lock file on release may have done so between our open
            # and flock: then we hold a lock on a deleted file, which protects nothing.
            if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            raise LockedError(f"{what} {folder} is being written by {_holder(lock_path)}; wait "
                              f"for it to finish (or stop it), or use another folder") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(os.path.basename(a) if i == 0 else a
                                    for i, a in enumerate(sys.argv))[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        remove_stale_temp(Path(stale_in) if stale_in is not None else folder, stale)
        try:
            yield lock_path
        finally:
            if remove:
                lock_path.unlink(missing_ok=True)  # while still holding it
    finally:
        os.close(fd)  # releases the flock


__all__ = ["LOCK_NAME", "LockedError", "TEMP_PATTERNS", "remove_stale_temp", "writer_lock"]
