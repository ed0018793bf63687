"""Padded batches against each sequence run alone: at every real position the masked runtime,
the ablations and the KL compute what a batch of that one sequence (no padding) computes."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import prepare_run
from bench.padding import real_index, real_position_mean
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from bench.zoo.tracr_models import build_tracr_model
from tasks.base import TaskData
from tests.conftest import tiny_model
from tests.test_runtime import hook_patch_one_edge

TOL = 1e-4
LENGTHS = [6, 3, 1, 5]  # of the causal batch; every Tracr length 1..5 appears in its batch
SIDES = ["right", "left"]


def pad(rows: list[torch.Tensor], side: str, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences of different lengths, padded with `fill` on `side`, and their mask."""
    width = max(len(row) for row in rows)
    tokens = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        tokens[i, span], mask[i, span] = row, 1
    return tokens, mask


def causal_batch(side: str) -> tuple[HookedTransformer, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random causal model, clean and corrupted batches of mixed lengths, and their mask."""
    model = tiny_model("ln-gelu")
    gen = torch.Generator().manual_seed(4)
    clean = [torch.randint(0, 49, (n,), generator=gen) for n in LENGTHS]
    corrupt = [torch.randint(0, 49, (n,), generator=gen) for n in LENGTHS]
    (tokens, mask), (corrupted, _) = pad(clean, side, 49), pad(corrupt, side, 49)
    return model, tokens, corrupted, mask


def tracr_batch(side: str) -> tuple[HookedTransformer, torch.Tensor, torch.Tensor, torch.Tensor]:
    """tracr-reverse, inputs of every length 1..5 and corruptions of the same lengths."""
    tracr = build_tracr_model("reverse")
    clean = [(1,), (2, 3), (3, 1, 2), (1, 1, 2, 3), (3, 2, 1, 2, 1), (2, 1)]
    corrupt = [(3,), (1, 1), (2, 2, 1), (3, 3, 1, 2), (1, 3, 3, 2, 2), (1, 3)]
    tokens, mask = tracr.encode_padded(clean, side)
    corrupted, corrupted_mask = tracr.encode_padded(corrupt, side)
    assert torch.equal(mask, corrupted_mask)
    return load_model("tracr-reverse"), tokens, corrupted, mask


BATCHES = {"causal": causal_batch, "tracr": tracr_batch}
# Zero ablation on Tracr: a corruption of the same length changes only its value path.
ABLATIONS = {"causal": "corrupted", "tracr": "zero"}
EDGES = {
    "causal": ["input->a0.h1<q>", "input->a2.h3<k>", "a0.h2->a1.h0<v>", "m0->a1.h1<k>", "m1->m2", "a2.h1->logits"],
    "tracr": ["input->a0.h0<v>", "a0.h0->m0", "m0->m1", "m2->a3.h0<q>", "input->a3.h0<k>", "a3.h0->logits"],
}


def alone(tokens: torch.Tensor, mask: torch.Tensor, i: int) -> torch.Tensor:
    """Sequence i without its padding, as a batch of one."""
    return tokens[i, mask[i].bool()][None]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("kind", list(BATCHES))
@torch.no_grad()
def test_all_ones_mask_gives_each_sequence_alone(kind: str, side: str) -> None:
    model, tokens, corrupted, mask = BATCHES[kind](side)
    runtime = MaskedRuntime(model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupted, attention_mask=mask)
    masked = runtime.forward(tokens, runtime.graph.mask(), ablated)
    plain = runtime.run(tokens, mask)
    for i in range(len(tokens)):
        expected = model(alone(tokens, mask, i))[0]
        assert (masked[i, mask[i].bool()] - expected).abs().max() < TOL, i
        assert (plain[i, mask[i].bool()] - expected).abs().max() < TOL, i


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("kind", list(BATCHES))
@torch.no_grad()
def test_one_edge_off_equals_the_hook_patch_of_each_sequence_alone(kind: str, side: str) -> None:
    """The runtime's edge removal on a padded batch against the textbook hook patch (with
    TransformerLens's own per-head outputs) of that edge on each sequence alone."""
    model, tokens, corrupted, mask = BATCHES[kind](side)
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    ablation = ABLATIONS[kind]
    ablated = runtime.ablate(ablation, corrupted_tokens=corrupted, like=tokens, attention_mask=mask)
    for edge in EDGES[kind]:
        src, dst = edge.split("->")
        edge_mask = graph.mask()
        edge_mask[graph.src_index[src], graph.dst_index[dst]] = 0
        masked = runtime.forward(tokens, edge_mask, ablated)
        changed = 0.0
        for i in range(len(tokens)):
            clean_i = alone(tokens, mask, i)
            corrupt_i = alone(corrupted, mask, i) if ablation == "corrupted" else None
            expected = hook_patch_one_edge(model, edge, clean_i, corrupt_i)[0]
            assert (masked[i, mask[i].bool()] - expected).abs().max() < TOL, (edge, i)
            changed = max(changed, float((expected - model(clean_i)[0]).abs().max()))
        assert changed > 1e-3, f"patching {edge} must change some output"


@pytest.mark.parametrize("side", SIDES)
@torch.no_grad()
def test_mean_ablation_averages_real_positions_only(side: str) -> None:
    """With every edge off, the logits' input is the reference sequences' mean final residual
    at the same real index (the i-th real token), each reference sequence run alone."""
    model, tokens, reference, mask = causal_batch(side)
    reference_mask = mask.flip(0)  # other lengths, so every index is still covered
    reference = reference.flip(0)
    runtime = MaskedRuntime(model)
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    by_index: dict[int, list[torch.Tensor]] = {}
    for i in range(len(reference)):
        _, cache = model.run_with_cache(alone(reference, reference_mask, i), names_filter=last)
        for j, resid in enumerate(cache[last][0]):
            by_index.setdefault(j, []).append(resid)
    ablated = runtime.ablate("mean", reference_tokens=reference, attention_mask=mask, reference_mask=reference_mask)
    off = runtime.forward(tokens, torch.zeros_like(runtime.graph.mask()), ablated)
    index = real_index(mask)
    for i in range(len(tokens)):
        for p in torch.nonzero(mask[i]).flatten().tolist():
            mean_resid = torch.stack(by_index[int(index[i, p])]).mean(0)
            assert (off[i, p] - model.unembed(model.ln_final(mean_resid[None, None]))[0, 0]).abs().max() < TOL


def test_mean_ablation_refuses_positions_no_reference_reaches() -> None:
    outputs = torch.ones(2, 3, 1)
    with pytest.raises(ValueError, match="the run has 3 real positions, the reference sequences cover 2"):
        real_position_mean(outputs, torch.tensor([[1, 1, 0], [1, 0, 0]]), torch.tensor([[1, 1, 1]]))


@pytest.mark.parametrize("side", SIDES)
@torch.no_grad()
def test_kl_reads_real_positions_only(side: str) -> None:
    """The KL of a circuit on a padded batch is the mean over sequences of its KL on each
    sequence alone, summed over that sequence's positions."""
    model, tokens, corrupted, mask = causal_batch(side)
    runtime = MaskedRuntime(model)
    everywhere = slice(0, None)

    def task_data(clean: torch.Tensor, corrupt: torch.Tensor, attention_mask: torch.Tensor | None) -> TaskData:
        return TaskData(
            clean, corrupt, lambda x: x[..., 0, 0], "", output_positions=everywhere, attention_mask=attention_mask
        )

    circuit = (
        torch.rand(runtime.graph.n_sources, runtime.graph.n_destinations, generator=torch.Generator().manual_seed(2))
        > 0.5
    ).float()
    run = prepare_run(runtime, task_data(tokens, corrupted, mask), "corrupted")
    padded = run.kl_to_full(runtime.forward(tokens, circuit, run.ablated))
    each = []
    for i in range(len(tokens)):
        single = prepare_run(runtime, task_data(alone(tokens, mask, i), alone(corrupted, mask, i), None), "corrupted")
        each.append(single.kl_to_full(runtime.forward(single.data.clean, circuit, single.ablated)))
    assert torch.stack(each).mean() > 1e-3
    assert abs(float(padded) - float(torch.stack(each).mean())) < TOL


def test_a_bad_attention_mask_is_refused_in_one_line() -> None:
    clean = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"task data attention mask \(2, 2\) must have the tokens' shape \(2, 3\)"):
        TaskData(clean, clean, lambda x: x, "", attention_mask=torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"holds \[0, 2\]; valid values: 0 \(padding\), 1 \(real token\)"):
        TaskData(clean, clean, lambda x: x, "", attention_mask=torch.tensor([[2, 0, 0], [2, 2, 2]]))
    with pytest.raises(ValueError, match=r"leaves sequences \[1\] without a real token"):
        TaskData(clean, clean, lambda x: x, "", attention_mask=torch.tensor([[1, 0, 0], [0, 0, 0]]))
