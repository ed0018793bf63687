"""A task: at the last position, prefer the sequence's first token over a replacement for it."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from bench.api import Task, TaskData, TaskInputError, token_pairs_dataset

LENGTH = 6


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    """Random sequences; the corruption replaces the first token; metric: logit(first) - logit(replacement)."""
    vocab = model.cfg.d_vocab
    if vocab < 2 or model.cfg.n_ctx < LENGTH:
        raise TaskInputError(f"example-first-token needs 2+ tokens and {LENGTH}+ positions, got {model.cfg}")
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(vocab, (n_examples, LENGTH), generator=gen)
    shift = torch.randint(1, vocab, (n_examples,), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 0] = (clean[:, 0] + shift) % vocab
    answer, distractor = clean[:, 0], corrupted[:, 0]

    def logit_difference(logits: torch.Tensor) -> torch.Tensor:
        last = logits[..., -1, :]  # [..., n, vocab]
        index = torch.stack([answer, distractor], dim=-1).to(last.device).expand(*last.shape[:-1], 2)
        picked = last.gather(-1, index)
        return picked[..., 0] - picked[..., 1]

    return TaskData(
        clean=clean,
        corrupted=corrupted,
        metric=logit_difference,
        metric_name="logit diff first token - replacement",
        dataset=token_pairs_dataset(clean, corrupted),
    )


TASK = Task(
    name="example-first-token",
    model="example-tiny",
    description="recall the first token at the last position (example plugin task)",
    citation="CDBench example plugin",
    build=build,
    default_examples=16,
    metric="logit diff first token - replacement",
)
