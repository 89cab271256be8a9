"""The task registry: ``register_task``, ``get_task``, ``task_of`` (torch-free)."""

from __future__ import annotations

from typing import TypeVar

from recurdepth.data.tasks.base import Task
from recurdepth.errors import ConfigError, choices_message

TASKS: dict[str, Task] = {}

T = TypeVar("T", Task, type[Task])


def register_task(task: T) -> T:
    """Add a task (an instance, or a Task subclass: used as a class decorator) by its name.

    ValueError if the name is taken.
    """
    instance = task() if isinstance(task, type) else task
    if instance.name in TASKS:
        raise ValueError(f"task {instance.name!r} is already registered")
    TASKS[instance.name] = instance
    return task


def get_task(name: str) -> Task:
    """The Task called ``name`` (ConfigError listing the tasks)."""
    if name not in TASKS:
        import recurdepth.data.registry  # noqa: F401  loads the plug-ins, which register theirs
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(choices_message("task", name, sorted(TASKS))) from None


def task_of(dataset: str) -> Task:
    """The Task of a registered data set (ConfigError listing the data sets)."""
    from recurdepth.data.registry import get_dataset

    return get_task(get_dataset(dataset).task)


__all__ = ["TASKS", "get_task", "register_task", "task_of"]
