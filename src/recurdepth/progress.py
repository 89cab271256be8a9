"""When progress bars are drawn: one rule for every bar of the package."""

from __future__ import annotations


def bar_disable(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a bar: off when not wanted, and when stderr is not a terminal.

    ``None`` is tqdm's "draw only on a terminal", which keeps carriage returns and escape codes
    out of log files and pipes.
    """
    return None if progress else True


__all__ = ["bar_disable"]
