"""Unexpected errors of a command: one line for the user, the traceback in a log file.

Errors of our own (:class:`~recurdepth.errors.RecurDepthError`) already say what to do. Anything
else (a full disk, a permission, a bug) is summarised as ``type: message`` plus a hint for its
kind, and the traceback goes to a log file whose path is printed; ``RECURDEPTH_DEBUG=1`` prints
the traceback instead.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

DEBUG_ENV = "RECURDEPTH_DEBUG"
LOG_DIR_ENV = "RECURDEPTH_LOG_DIR"

_OS_HINTS = {
    errno.ENOSPC: "free some disk space (or choose another output folder) and run it again",
    errno.EDQUOT: "free some disk space (or choose another output folder) and run it again",
    errno.EACCES: "check the permissions of that path, or choose another folder",
    errno.EPERM: "check the permissions of that path, or choose another folder",
    errno.EROFS: "the file system is read-only: choose a writable output folder",
    errno.ENOENT: "check that the path exists",
    errno.EEXIST: "a file is in the way: move it, or choose another path",
    errno.ENOTDIR: "a file is in the way where a folder is expected: move it, or choose another path",
    errno.EISDIR: "a folder is in the way where a file is expected: move it, or choose another path",
    errno.ENOTEMPTY: "a folder is in the way: move it, or choose another path",
}


def debug_enabled() -> bool:
    """True when ``RECURDEPTH_DEBUG`` asks for full tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def hint_for(exc: BaseException) -> str:
    """What the user can do about an unexpected exception of this kind."""
    if isinstance(exc, MemoryError):
        return "the job needs more memory than this machine has: use smaller sizes"
    if isinstance(exc, OSError) and exc.errno in _OS_HINTS:
        return _OS_HINTS[exc.errno]
    if isinstance(exc, OSError):
        return "check the paths involved, their permissions and the free disk space"
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError, UnicodeError)):
        return ("an input file or value has an unexpected form: check the files the command "
                "read; if they are fine, please report this with the log")
    return "this is unexpected: please report it with the log"


def _log_dir() -> Path:
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "recurdepth" / "logs"


def write_log(command: str, exc: BaseException) -> Path | None:
    """Write the traceback of ``exc`` to a new log file; its path, or None if nothing is writable."""
    text = (f"recurdepth {command}\nargv: {sys.argv}\ntime: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (_log_dir(), Path(tempfile.gettempdir()) / "recurdepth-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of a long message)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def report_unexpected(command: str | None, exc: BaseException) -> int:
    """Print one line about ``exc`` (or its traceback when debugging); return exit status 1."""
    prog = f"recurdepth {command}" if command else "recurdepth"
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        return 1
    log = write_log(command or "", exc)
    where = f"; traceback in {log}" if log else ""
    print(f"{prog}: error: {one_line(exc)} ({hint_for(exc)}){where} "
          f"[set {DEBUG_ENV}=1 to print it]", file=sys.stderr)
    return 1


__all__ = ["DEBUG_ENV", "LOG_DIR_ENV", "debug_enabled", "hint_for", "one_line",
           "report_unexpected", "write_log"]
