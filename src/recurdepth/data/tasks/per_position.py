"""Per-position labels on 1-D strings (prefix sums): every position counts, exact match.

Its own module (not the strings data set's) so that every 1-D data-set plug-in can build on it
whatever order the plug-ins are imported in.
"""

from __future__ import annotations

from recurdepth.data.tasks.base import DenseTask
from recurdepth.data.tasks.registry import register_task


@register_task
class PerPosition(DenseTask):
    """A label at every position of a string; all positions count; exact match over the string."""

    name = "per_position"
    spatial_dims = 1  # positions per example: the length
    sized = True
    augmented = False
    input_range = 1.0  # bits are stored as 0/1: the network sees exactly 0.0 and 1.0

    def size_text(self, size: int) -> str:
        """How reports name examples of ``size``: ``64-bit strings``."""
        return f"{size}-bit strings"


__all__ = ["PerPosition"]
