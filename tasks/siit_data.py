"""Shared data and metric of the four `siit_*` tasks (not a task itself)."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from bench.zoo.trained import programs, siit
from tasks.base import TaskData, token_pairs_dataset

CITATION = "Gupta et al. 2024, InterpBench (SIIT); program from tracr lib (Lindner et al. 2023)"


def _metric(categorical: bool, full: torch.Tensor):
    """Higher = closer to the full model at positions 1..: log-probability of the full model's
    own answer (categorical programs), or negative squared L2 to its output (numerical)."""
    if categorical:
        answer = full[:, 1:].argmax(-1)

        def logprob(logits: torch.Tensor) -> torch.Tensor:
            logp = torch.log_softmax(logits[..., 1:, :], dim=-1)
            return logp.gather(-1, answer.expand(*logp.shape[:-1]).unsqueeze(-1)).squeeze(-1).mean(-1)

        return logprob

    def neg_l2(logits: torch.Tensor) -> torch.Tensor:
        return -((logits[..., 1:, :] - full[:, 1:]) ** 2).sum(dim=(-1, -2))

    return neg_l2


def build_siit_data(program: str, model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    """Distinct full-length inputs of the program's domain, each paired with a different one."""
    clean, corrupted = siit.eval_pairs(program, n_examples, seed)
    with torch.no_grad():
        full = model(clean)
    categorical = programs.tracr_program(program).categorical
    name = "log-prob of the full model's answer" if categorical else "neg. squared L2 to full-model output"
    return TaskData(
        clean,
        corrupted,
        _metric(categorical, full),
        name,
        output_positions=slice(1, None),
        dataset=token_pairs_dataset(clean, corrupted),
    )
