"""What a task is: paired clean/corrupted inputs, a per-example metric and the model it is for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch
from datasets import Dataset
from transformer_lens import HookedTransformer

from bench.padding import check_attention_mask, padding_mask


class TaskInputError(ValueError):
    """A task cannot be built for this model or tokenizer; the message is one line saying why."""


Metric = Callable[[torch.Tensor], torch.Tensor]
"""Maps logits `[..., n_examples, pos, d_vocab_out]` to per-example scores `[..., n_examples]`;
higher means closer to the full model's behaviour on the task."""


@dataclass(frozen=True)
class TaskData:
    """One seeded draw of a task's examples, ready for the masked runtime.

    Attributes:
        clean: `[n, pos]` token ids the circuit should explain.
        corrupted: `[n, pos]` token ids aligned position by position with `clean`.
        metric: per-example task metric (see `Metric`).
        metric_name: short description, e.g. "neg. L2 to full-model output".
        reference: tokens for mean ablation (defaults to `corrupted` when None).
        output_positions: the positions whose outputs the task reads (for KL-based
            objectives such as ACDC's and Edge Pruning's): a slice shared by every example
            (the last position by default), or a `[n]` / `[n, k]` index tensor when examples
            differ in length (right-padded prompts read at each example's own last token).
        dataset: the examples as a `datasets.Dataset` (prompts, answer and distractor tokens,
            positions; token ids only for the synthetic tasks), for users who want to inspect or
            reuse them.
        attention_mask: `[n, pos]` 1 at real tokens, 0 at padding (either side), shared by
            `clean` and `corrupted` (a corruption is as long as its clean input); None when
            every sequence fills every position. Padding never influences a real position,
            and metrics and KL read real positions only.
        reference_mask: the padding of `reference`, when that is given and padded.
    """

    clean: torch.Tensor
    corrupted: torch.Tensor
    metric: Metric
    metric_name: str
    reference: torch.Tensor | None = None
    output_positions: slice | torch.Tensor = field(default_factory=lambda: slice(-1, None))
    dataset: Dataset | None = None
    attention_mask: torch.Tensor | None = None
    reference_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.clean.shape != self.corrupted.shape:
            raise ValueError(
                f"clean {tuple(self.clean.shape)} and corrupted {tuple(self.corrupted.shape)} "
                "inputs must align position by position"
            )
        if self.attention_mask is not None:
            check_attention_mask(self.attention_mask, self.clean, "task data")
        if self.reference_mask is not None:
            if self.reference is None:
                raise ValueError("reference_mask is the padding of `reference`, which is not given")
            check_attention_mask(self.reference_mask, self.reference, "reference")

    @cached_property
    def output_weights(self) -> torch.Tensor | None:
        """Which output positions of each example are real tokens: `[n, k]` 0/1 floats, or None
        when none is padding."""
        mask = padding_mask(self.attention_mask)
        if mask is None:
            return None
        return select_positions(mask.float()[..., None], self.output_positions)[..., 0]

    @property
    def n_examples(self) -> int:
        return int(self.clean.shape[0])

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits at the output positions: `[..., n, pos, vocab]` -> `[..., n, k, vocab]`."""
        return select_positions(logits, self.output_positions)


def select_positions(logits: torch.Tensor, positions: slice | torch.Tensor) -> torch.Tensor:
    """`logits[..., i, positions[i], :]` for every example i: `[..., n, pos, vocab]` -> `[..., n, k, vocab]`.

    `positions` is a slice shared by every example, or a `[n]` / `[n, k]` tensor of indices.
    """
    if isinstance(positions, slice):
        return logits[..., positions, :]
    index = positions if positions.dim() == 2 else positions[:, None]
    n, k = index.shape
    expanded = index.to(logits.device)[..., None].expand(*logits.shape[:-3], n, k, logits.shape[-1])
    return logits.gather(-2, expanded)


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
        any_hub_model: the task needs nothing but a vocabulary, so it also runs on every hub
            architecture and its `random:` stand-ins (resized ones included).
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
    any_hub_model: bool = False

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model, *self.other_models)

    def runs_on(self, model: str) -> bool:
        """Whether the task can run on zoo model `model` (a name the zoo knows)."""
        if model in self.models:
            return True
        if not self.any_hub_model:
            return False
        from bench.zoo import hub_architecture  # the zoo imports TransformerLens: only when asked

        return hub_architecture(model) is not None


def token_pairs_dataset(clean: torch.Tensor, corrupted: torch.Tensor) -> Dataset:
    """The examples of a task that is nothing but token ids (Tracr, SIIT, induction) as a
    `datasets.Dataset`, like the text tasks' prompt datasets."""
    return Dataset.from_dict({"clean_ids": clean.tolist(), "corrupted_ids": corrupted.tolist()})
