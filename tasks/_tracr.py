"""Shared data and metric for the Tracr-compiled programs (used by the two tracr task modules)."""

from __future__ import annotations

import itertools

import torch
from transformer_lens import HookedTransformer

from bench.zoo.tracr_models import build_tracr_model
from tasks.base import TaskData, token_pairs_dataset


def neg_l2_to(target: torch.Tensor):
    """Per-example negative squared L2 distance to the full model's output, over the
    program's output positions (BOS excluded), as ACDC's tracr "l2" metric."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return -((logits[..., 1:, :] - target[..., 1:, :]) ** 2).sum(dim=(-1, -2))

    return metric


def build_tracr_data(program: str, model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    """All full-length inputs of the program's domain (or a seeded sample of `n_examples`),
    each paired with a different input drawn at random as its corruption."""
    tracr = build_tracr_model(program)
    domain = list(itertools.product(tracr.vocab, repeat=tracr.max_seq_len))
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(domain), generator=gen)
    clean_idx = order[: min(n_examples, len(domain))]
    # A different input for each example: shift by a random nonzero offset.
    offsets = torch.randint(1, len(domain), (len(clean_idx),), generator=gen)
    corrupt_idx = (clean_idx + offsets) % len(domain)
    clean = tracr.encode([domain[i] for i in clean_idx.tolist()])
    corrupted = tracr.encode([domain[i] for i in corrupt_idx.tolist()])
    with torch.no_grad():
        target = model(clean)
    return TaskData(
        clean,
        corrupted,
        neg_l2_to(target),
        "neg. squared L2 to full-model output",
        output_positions=slice(1, None),
        dataset=token_pairs_dataset(clean, corrupted),
    )
