"""Task registry: one module per task, each defining a module-level `TASK`.

The built-in task modules (and installed or `--plugin` ones, see `bench.plugins`) are imported on
the registry's first use, so `import tasks.base` does not import jax, tracr or every task.
"""

from __future__ import annotations

import importlib

from bench.registry import Registry
from tasks.base import Task, TaskData

# Modules under tasks/ defining a built-in `TASK`, in the order `bench list` shows them, after
# the Tracr tasks (one per program file in `bench.zoo.tracr_programs`, `tasks.tracr_tasks`).
BUILTIN_MODULES = (
    "siit_reverse",
    "siit_xproportion",
    "siit_sort",
    "siit_hist",
    "induction",
    "ioi",
    "greater_than",
    "docstring",
    "sva",
    "country_capital",
    "hypernymy",
    "gendered_pronoun",
    "gender_bias",
)


def _load_tasks() -> None:
    from bench.plugins import load_plugins
    from tasks.tracr_tasks import builtin_tracr_tasks

    for task in builtin_tracr_tasks():
        TASKS.add(task.name, task)
    for module in BUILTIN_MODULES:
        task = importlib.import_module(f"tasks.{module}").TASK
        TASKS.add(task.name, task)
    from tasks.mib_tasks import registered_tasks

    for task in registered_tasks():  # MIB's tasks, from a local copy of MIB's data
        TASKS.add(task.name, task)
    load_plugins()


TASKS: Registry[Task] = Registry("task", loader=_load_tasks)


def register_task(task: Task) -> Task:
    """Register `task` under `task.name` (a duplicate name is an error); returns it."""
    TASKS.add(task.name, task)
    return task


__all__ = ["TASKS", "Task", "TaskData", "register_task"]
