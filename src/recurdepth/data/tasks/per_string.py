"""One label per string (parity): cross-entropy and top-1 accuracy, on bits read as 0/1.

Its own module, like ``per_position``, so that any 1-D data-set plug-in can use it whatever order
the plug-ins are imported in. A model of this task gives one row of logits per string; the 1-D
family reads it off its last position (``recurdepth.models.dt_net_1d``).
"""

from __future__ import annotations

from recurdepth.data.tasks.base import BitStrings
from recurdepth.data.tasks.classification import Classification
from recurdepth.data.tasks.registry import register_task


@register_task
class PerString(BitStrings, Classification):
    """A label per string; strings are made at a chosen length; chance is 1 / classes."""

    name = "per_string"


__all__ = ["PerString"]
