"""Task registry: one module per task, each defining a module-level `TASK`."""

from __future__ import annotations

from bench.registry import Registry
from tasks import (
    country_capital,
    docstring,
    gender_bias,
    gendered_pronoun,
    greater_than,
    hypernymy,
    induction,
    ioi,
    mib_tasks,
    siit_hist,
    siit_reverse,
    siit_sort,
    siit_xproportion,
    sva,
    tracr_reverse,
    tracr_xproportion,
)
from tasks.base import Task, TaskData

TASKS: Registry[Task] = Registry("task")
for _module in (
    tracr_reverse,
    tracr_xproportion,
    siit_reverse,
    siit_xproportion,
    siit_sort,
    siit_hist,
    induction,
    ioi,
    greater_than,
    docstring,
    sva,
    country_capital,
    hypernymy,
    gendered_pronoun,
    gender_bias,
):
    TASKS.add(_module.TASK.name, _module.TASK)
for _task in mib_tasks.registered_tasks():  # MIB's tasks, from a local copy of MIB's data
    TASKS.add(_task.name, _task)

__all__ = ["TASKS", "Task", "TaskData"]
