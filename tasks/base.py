"""What a task is: paired clean/corrupted inputs, a per-example metric and the model it is for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# The data contract lives in the engine (`bench.task_data`); these names stay importable from here.
from bench.task_data import Metric, TaskData, TaskInputError, select_positions, token_pairs_dataset

if TYPE_CHECKING:  # annotations only: `import tasks.base` must stay cheap for plugin authors
    from transformer_lens import HookedTransformer

__all__ = ["Metric", "Task", "TaskData", "TaskInputError", "select_positions", "token_pairs_dataset"]


@dataclass(frozen=True)
class Task:
    """A registered task.

    Attributes:
        name: stable task name, e.g. "tracr-reverse".
        model: the zoo model the task is defined on.
        description: one line for `bench list`.
        citation: where the task comes from.
        build: `(model, n_examples, seed) -> TaskData`; deterministic in the seed.
        default_examples: how many examples a default run uses.
        ablations: ablation kinds that are meaningful for this task.
        other_models: zoo models besides `model` the task can run on (e.g. `random:gpt2`).
        suite_ablations: the ablations `bench run --all` uses for this task by default.
        metric: the task metric in a few words, for `bench list` (e.g. "logit diff IO - S").
    """

    name: str
    model: str
    description: str
    citation: str
    build: Callable[[HookedTransformer, int, int], TaskData]
    default_examples: int
    ablations: tuple[str, ...] = field(default=("corrupted", "mean", "zero", "zero-token"))
    other_models: tuple[str, ...] = ()
    suite_ablations: tuple[str, ...] = ("corrupted",)
    metric: str = ""

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model, *self.other_models)
