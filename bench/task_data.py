"""The data contract between tasks and the engine: what one draw of a task's examples is.

The engine (graph, runtime, discovery contract, scoring) depends on this module and never on
the `tasks` package, so importing the engine (or writing a method plugin) does not import the
built-in tasks, jax or tracr. `tasks.base` re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from bench.padding import check_attention_mask, padding_mask

if TYPE_CHECKING:  # `datasets` costs a second to import; only tasks that build datasets pay it
    from datasets import Dataset

__all__ = ["Metric", "TaskData", "TaskInputError", "select_positions", "token_pairs_dataset"]


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


def token_pairs_dataset(clean: torch.Tensor, corrupted: torch.Tensor) -> Dataset:
    """The examples of a task that is nothing but token ids (Tracr, SIIT, induction) as a
    `datasets.Dataset`, like the text tasks' prompt datasets."""
    from datasets import Dataset

    return Dataset.from_dict({"clean_ids": clean.tolist(), "corrupted_ids": corrupted.tolist()})
