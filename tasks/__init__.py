"""Task registry: one module per task, each defining a module-level `TASK`."""

from __future__ import annotations

from bench.registry import Registry
from tasks import country_capital, gendered_pronoun, hypernymy, sva, tracr_reverse, tracr_xproportion
from tasks.base import Task, TaskData

TASKS: Registry[Task] = Registry("task")
for _module in (tracr_reverse, tracr_xproportion, sva, country_capital, hypernymy, gendered_pronoun):
    TASKS.add(_module.TASK.name, _module.TASK)

__all__ = ["TASKS", "Task", "TaskData"]
