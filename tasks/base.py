"""What a task is: paired clean/corrupted inputs, a per-example metric and the model it is for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# The data contract lives in the engine (`bench.task_data`); these names stay importable from here.
from bench.task_data import Metric, TaskData, TaskInputError, select_positions, token_pairs_dataset

if TYPE_CHECKING:  # annotations only: `import tasks.base` must stay cheap for plugin authors
    from transformer_lens import HookedTransformer

__all__ = ["Metric", "ModelNeeds", "Task", "TaskData", "TaskInputError", "select_positions", "token_pairs_dataset"]


@dataclass(frozen=True)
class ModelNeeds:
    """What a task needs of a model, for tasks that run on any model that has it (a user's
    JSONL file runs on every model with a tokenizer) instead of on a list of model names.

    Attributes:
        tokenizer: the model must carry a tokenizer.
        d_vocab: the model's input vocabulary must be exactly this size (None: any).
        n_ctx: the model must take sequences at least this long (None: any).
    """

    tokenizer: bool = False
    d_vocab: int | None = None
    n_ctx: int | None = None

    def problem(self, model: HookedTransformer) -> str | None:
        """Why `model` cannot run the task, in words, or None when it can."""
        name = model.cfg.model_name
        if self.tokenizer and model.tokenizer is None:
            return f"model {name!r} has no tokenizer"
        if self.d_vocab is not None and model.cfg.d_vocab != self.d_vocab:
            return f"model {name!r} has a vocabulary of {model.cfg.d_vocab} tokens, the task needs {self.d_vocab}"
        if self.n_ctx is not None and model.cfg.n_ctx < self.n_ctx:
            return f"model {name!r} takes {model.cfg.n_ctx} positions, the task needs {self.n_ctx}"
        return None

    def describe(self) -> str:
        parts = ["a tokenizer"] if self.tokenizer else []
        if self.d_vocab is not None:
            parts.append(f"a vocabulary of {self.d_vocab}")
        if self.n_ctx is not None:
            parts.append(f"at least {self.n_ctx} positions")
        return "any model with " + " and ".join(parts) if parts else "any model"


@dataclass(frozen=True)
class Task:
    """A registered task.

    Attributes:
        name: stable task name, e.g. "tracr-reverse".
        model: the zoo model the task is defined on; None for a task that has no model of its
            own (it runs on whatever model is given that meets `needs`).
        description: one line for `bench list`.
        citation: where the task comes from.
        build: `(model, n_examples, seed) -> TaskData`; deterministic in the seed.
        default_examples: how many examples a default run uses.
        ablations: ablation kinds that are meaningful for this task.
        other_models: zoo models besides `model` that `run --all --models ...` pairs the task
            with by name (e.g. `random:gpt2`). Not a list of accepted models: a task that states
            `needs` runs on any model that has it; without `needs`, these are its only models.
        suite_ablations: the ablations `bench run --all` uses for this task by default.
        metric: the task metric in a few words, for `bench list` (e.g. "logit diff IO - S").
        needs: what a model must have to run the task; when given, the task runs on any model
            that has it (checked once the model is loaded), not only on `models`.
        ground_truth_dir: for a task that brings its own ground truth (a user's RASP file),
            returns the directory holding `<name>.json` (deriving it on first use); None: the
            package's `ground_truth/`. A ground truth scores runs on its own model only.
        any_hub_model: `run --all --models ...` also pairs the task with every hub architecture
            and its `random:` stand-ins (resized ones included); one run accepts them too.
    """

    name: str
    model: str | None
    description: str
    citation: str
    build: Callable[[HookedTransformer, int, int], TaskData]
    default_examples: int
    ablations: tuple[str, ...] = field(default=("corrupted", "mean", "zero", "zero-token"))
    other_models: tuple[str, ...] = ()
    suite_ablations: tuple[str, ...] = ("corrupted",)
    metric: str = ""
    needs: ModelNeeds | None = None
    ground_truth_dir: Callable[[], Path] | None = None
    any_hub_model: bool = False

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(name for name in (self.model, *self.other_models) if name is not None)

    def runs_on(self, model: str) -> bool:
        """Whether the task accepts model `model` by name: one of its own models; any model
        when it states `needs` (whether the model has what it needs is checked once it is
        loaded); any hub architecture and its `random:` stand-ins when `any_hub_model`."""
        if self.needs is not None or model in self.models:
            return True
        if not self.any_hub_model:
            return False
        from bench.zoo import hub_architecture  # the zoo imports TransformerLens: only when asked

        return hub_architecture(model) is not None
