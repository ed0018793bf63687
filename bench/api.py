"""The public API for adapter authors: everything a method, task or model plugin needs, in one
import that costs no built-in task, jax or tracr.

>>> from bench.api import DiscoveryRun, EdgeScores, register_method
>>> @register_method("my-method", description="...", citation="...")  # doctest: +SKIP
... def my_method(run: DiscoveryRun) -> EdgeScores: ...

See the README's "Add your own method / task / model" sections for complete examples, and
`bench.plugins` for how an installed package or a loose file is found.
"""

from __future__ import annotations

from bench.discovery import DiscoveryRun, EdgeScores, MethodFn
from bench.graph import Graph
from bench.model_registry import MODELS, ModelLoader, ModelSpec, register_model
from bench.registry import UnknownNameError
from bench.task_data import Metric, TaskData, TaskInputError, select_positions, token_pairs_dataset
from methods.spec import METHODS, MethodSpec, config_from_options, register_method, whole_number
from tasks import TASKS, register_task
from tasks.base import Task

__all__ = [
    "METHODS",
    "MODELS",
    "TASKS",
    "DiscoveryRun",
    "EdgeScores",
    "Graph",
    "MethodFn",
    "MethodSpec",
    "Metric",
    "ModelLoader",
    "ModelSpec",
    "Task",
    "TaskData",
    "TaskInputError",
    "UnknownNameError",
    "config_from_options",
    "register_method",
    "register_model",
    "register_task",
    "select_positions",
    "token_pairs_dataset",
    "whole_number",
]
