"""Shared data and metric for the Tracr-compiled programs (every task of `tasks.tracr_tasks`).

Inputs of every length from 1 to the program's maximum, so the part of a program that reads
the length (`reverse`'s length head and MLP) matters; shorter inputs are right-padded with
Tracr's own pad token (`compiler_pad`) and an attention mask, as Tracr's model pads. A
corruption has the length of its clean input. `lengths="max"` keeps the maximum-length-only
data of the ACDC paper and auto-circuit, for comparison.
"""

from __future__ import annotations

import itertools

import torch
from transformer_lens import HookedTransformer

from bench.padding import padded_forward, padding_mask
from bench.zoo.tracr_models import TracrModel, build_tracr_model
from tasks.base import Metric, TaskData, token_pairs_dataset

LENGTHS: tuple[str, ...] = ("all", "max")


def neg_l2_to(target: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Metric:
    """Per-example negative squared L2 distance to the full model's output, over the
    program's output positions (BOS and padding excluded), as ACDC's tracr "l2" metric."""
    real = None if attention_mask is None else attention_mask[:, 1:, None].to(target.dtype)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        squared = (logits[..., 1:, :] - target[..., 1:, :]) ** 2
        return -(squared if real is None else squared * real).sum(dim=(-1, -2))

    return metric


def stratified_sample(sizes: list[int], n: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Indices into each of several pools of `sizes`, exactly `n` in all: every pool whole when
    `n` covers them all, else shares proportional to size (largest remainders round up), with
    at least one from each pool when `n` has room for that."""
    total = sum(sizes)
    if n >= total:
        return [torch.randperm(size, generator=generator) for size in sizes]
    exact = [n * size / total for size in sizes]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: n - sum(shares)]:
        shares[i] += 1
    if n >= len(sizes):
        for i in range(len(sizes)):
            if shares[i] == 0:  # take one from the largest share
                shares[max(range(len(sizes)), key=shares.__getitem__)] -= 1
                shares[i] = 1
    return [torch.randperm(size, generator=generator)[:share] for size, share in zip(sizes, shares, strict=True)]


def tracr_pairs(tracr: TracrModel, n_examples: int, seed: int, lengths: str = "all") -> tuple[list, list]:
    """Clean inputs (without BOS) and a different corruption of the same length for each."""
    if lengths not in LENGTHS:
        raise ValueError(f"unknown tracr lengths {lengths!r}; valid choices: {', '.join(LENGTHS)}")
    first = 1 if lengths == "all" else tracr.max_seq_len
    domains = [list(itertools.product(tracr.vocab, repeat=n)) for n in range(first, tracr.max_seq_len + 1)]
    gen = torch.Generator().manual_seed(seed)
    clean, corrupted = [], []
    for domain, picks in zip(domains, stratified_sample([len(d) for d in domains], n_examples, gen), strict=True):
        # A different input of the same length for each example: shift by a random nonzero offset.
        offsets = torch.randint(1, len(domain), (len(picks),), generator=gen)
        clean += [domain[i] for i in picks.tolist()]
        corrupted += [domain[i] for i in ((picks + offsets) % len(domain)).tolist()]
    order = torch.randperm(len(clean), generator=gen).tolist()
    return [clean[i] for i in order], [corrupted[i] for i in order]


def build_tracr_data(
    program: str, model: HookedTransformer, n_examples: int, seed: int, lengths: str = "all"
) -> TaskData:
    """Inputs of every length 1..max (`lengths="all"`) or of the maximum length only
    (`"max"`): the whole domain, or a seeded sample of `n_examples` with every length in
    proportion to its share of the domain; each paired with a different input of its length
    drawn at random as its corruption."""
    tracr = build_tracr_model(program)
    if len(tracr.vocab) < 2:
        raise ValueError(f"tracr program {program!r} has one token; no corruption differs from its input")
    clean_inputs, corrupted_inputs = tracr_pairs(tracr, n_examples, seed, lengths)
    clean, attention_mask = tracr.encode_padded(clean_inputs)
    corrupted, _ = tracr.encode_padded(corrupted_inputs)
    mask = padding_mask(attention_mask)
    with torch.no_grad():
        target = padded_forward(model, clean, mask)
    return TaskData(
        clean,
        corrupted,
        neg_l2_to(target, mask),
        "neg. squared L2 to full-model output",
        output_positions=slice(1, None),
        dataset=token_pairs_dataset(clean, corrupted),
        attention_mask=mask,
    )
