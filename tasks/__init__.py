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
    ioi,
    sva,
    tracr_reverse,
    tracr_xproportion,
)
from tasks.base import Task, TaskData

TASKS: Registry[Task] = Registry("task")
for _module in (
    tracr_reverse,
    tracr_xproportion,
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

__all__ = ["TASKS", "Task", "TaskData"]
