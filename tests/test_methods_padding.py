"""The patching and gradient methods on a padded batch of mixed lengths score, for every edge,
the mean of their scores on each sequence run alone: their objective is the mean of the
per-example metrics, and padding never reaches a real position."""

from __future__ import annotations

import copy

import pytest
import torch

from bench.discovery import prepare_run
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from bench.zoo.tracr_models import build_tracr_model
from methods import METHODS
from tasks._tracr import neg_l2_to
from tasks.base import TaskData, select_positions
from tests.conftest import tiny_model
from tests.test_padding import LENGTHS, alone, pad

IDENTITY_METHODS = ["eap", "eap-ig-inputs", "eap-ig-activations", "eap-gp", "exact-patching"]


def last_token_logit_diff(last: torch.Tensor):
    """Logit of token 3 minus token 8 at each example's last real token."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        final = select_positions(logits, last)[..., 0, :]
        return final[..., 3] - final[..., 8]

    return metric


def causal_case(side: str) -> tuple[torch.nn.Module, TaskData, list[TaskData]]:
    """A random causal model (float64), a padded batch and each of its sequences alone."""
    model = tiny_model("ln-gelu", dtype=torch.float64)
    gen = torch.Generator().manual_seed(6)
    rows = [torch.randint(0, 49, (n,), generator=gen) for n in LENGTHS]
    corrupt_rows = [torch.randint(0, 49, (n,), generator=gen) for n in LENGTHS]
    (clean, mask), (corrupted, _) = pad(rows, side, 49), pad(corrupt_rows, side, 49)
    last = (mask * torch.arange(mask.shape[1])).amax(1)
    batch = TaskData(clean, corrupted, last_token_logit_diff(last), "", output_positions=last, attention_mask=mask)
    singles = [
        TaskData(row[None], bad[None], last_token_logit_diff(torch.tensor([len(row) - 1])), "")
        for row, bad in zip(rows, corrupt_rows, strict=True)
    ]
    return model, batch, singles


def tracr_case() -> tuple[torch.nn.Module, TaskData, list[TaskData]]:
    """tracr-reverse (float64) on inputs of every length 1..5 with its L2 task metric."""
    tracr = build_tracr_model("reverse")
    model = copy.deepcopy(load_model("tracr-reverse")).to(torch.float64)
    inputs = [(1,), (2, 3), (3, 1, 2), (1, 1, 2, 3), (3, 2, 1, 2, 1), (2, 1)]
    clean, mask = tracr.encode_padded(inputs)
    runtime = MaskedRuntime(model)
    with torch.no_grad():
        batch = TaskData(
            clean, clean, neg_l2_to(runtime.run(clean, mask), mask), "", slice(1, None), attention_mask=mask
        )
        singles = []
        for i in range(len(inputs)):
            tokens = alone(clean, mask, i)
            singles.append(TaskData(tokens, tokens, neg_l2_to(model(tokens)), "", output_positions=slice(1, None)))
    return model, batch, singles


CASES = {
    "causal-right": (lambda: causal_case("right"), "corrupted"),
    "causal-left": (lambda: causal_case("left"), "corrupted"),
    "tracr": (tracr_case, "zero"),
}


# On Tracr, EAP's gradient at the full model is exactly 0 (the L2 metric's minimum), and the
# EAP-IG points (scaled embeddings, scaled layers) put dozens of the compiled MLPs' ReLU inputs
# exactly at 0, where 1e-16 of rounding between a batched and a single matmul picks the side.
PAIRS = [(method, case) for method in IDENTITY_METHODS for case in CASES]
PAIRS = [(m, c) for m, c in PAIRS if c != "tracr" or m in ("eap-gp", "exact-patching")]


@pytest.mark.parametrize(("method", "case"), PAIRS)
def test_padded_batch_scores_the_mean_of_each_sequence_alone(method: str, case: str) -> None:
    build, ablation = CASES[case]
    model, batch, singles = build()
    runtime = MaskedRuntime(model)
    spec = METHODS.get(method)
    scores = spec.func(prepare_run(runtime, batch, ablation, options=spec.defaults)).values.double()
    each = torch.stack(
        [spec.func(prepare_run(runtime, single, ablation, options=spec.defaults)).values.double() for single in singles]
    ).mean(0)
    scale = float(each.abs().max())
    assert scale > 1e-3
    assert (scores - each).abs().max() < 1e-5 * scale
