"""What a data set's task means: its loss, correct-count, input mask and input scale.

A data-set record names its task (see ``recurdepth.data.registry``); :func:`task_of` gives the
:class:`Task` holding the task's rules, so configs, training, evaluation and reports ask the task
instead of branching on the data set. A task is a subclass of :class:`Task` in its own module of
this package (``classification``, ``maze``, ``per_position``, ``per_string``), registered with :func:`register_task`; a new kind
of problem is one such module (and its import below). No torch is imported here.
"""

from __future__ import annotations

from recurdepth.data.tasks.base import DenseTask, Task
from recurdepth.data.tasks.registry import TASKS, get_task, register_task, task_of

# Importing the built-in task modules registers them.
from recurdepth.data.tasks import classification, maze, per_position, per_string  # noqa: E402,F401  isort: skip
from recurdepth.data.tasks.maze import wall_mask  # noqa: E402  isort: skip

__all__ = ["TASKS", "DenseTask", "Task", "get_task", "register_task", "task_of", "wall_mask"]
