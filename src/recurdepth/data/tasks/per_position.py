"""Per-position labels on 1-D strings (prefix sums): every position counts, exact match.

Its own module (not the strings data set's) so that every 1-D data-set plug-in can build on it
whatever order the plug-ins are imported in.
"""

from __future__ import annotations

from recurdepth.data.tasks.base import BitStrings, DenseTask
from recurdepth.data.tasks.registry import register_task


@register_task
class PerPosition(BitStrings, DenseTask):
    """A label at every position of a string; all positions count; exact match over the string."""

    name = "per_position"


__all__ = ["PerPosition"]
