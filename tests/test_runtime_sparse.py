"""The masked forward's sparse path (0/1 masks removing few edges) against its dense path and
against plain TransformerLens hook patches, on every shape the runtime supports."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

import bench.runtime
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from tests.test_architectures import TEST_SIZE, family_model, hand_patched_logits, tokens
from tests.test_padding import BATCHES
from tests.test_runtime import hook_patch_one_edge

# Llama: gated MLP, rotary, grouped keys/values; Gemma-2: post-norms; Pythia: parallel attn/MLP.
FAMILIES = ["gpt2", "llama3", "gemma2", "EleutherAI/pythia-70m"]
ABLATIONS = ["corrupted", "mean", "zero"]
REMOVED_PER_ROW = [0, 1, 3, 1, 2]


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[HookedTransformer, MaskedRuntime]]:
    return {family: (model, MaskedRuntime(model)) for family in FAMILIES for model in [family_model(family)]}


@pytest.fixture
def dense_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any forward that takes the dense path fails: the test runs the sparse path only."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dense path ran")

    monkeypatch.setattr(bench.runtime, "_MaskHooks", refuse)


def few_removed(runtime: MaskedRuntime, seed: int, removed: list[int] = REMOVED_PER_ROW) -> torch.Tensor:
    """All-ones masks, row i with `removed[i]` random edges at 0 (an edge and its neighbours
    into one destination, so one hook subtracts several deltas from one input)."""
    graph = runtime.graph
    gen = torch.Generator().manual_seed(seed)
    masks = graph.real_edge_mask.to(runtime.model.cfg.dtype).expand(len(removed), -1, -1).clone()
    for row, n in enumerate(removed):
        ids = torch.randperm(graph.n_edges, generator=gen)[:n]
        masks[row, graph.edge_src[ids], graph.edge_dst[ids]] = 0
    masks[2, :3, graph.logits_dst] = 0  # three removed edges into the logits, on top
    return masks


def ablated_run(runtime: MaskedRuntime, kind: str, clean: torch.Tensor, corrupt: torch.Tensor, padding=None):
    return runtime.ablate(
        kind,
        corrupted_tokens=corrupt,
        reference_tokens=torch.cat([corrupt, clean]),
        like=clean,
        attention_mask=padding,
        reference_mask=None if padding is None else torch.cat([padding, padding]),
    )


def assert_close(sparse: torch.Tensor, dense: torch.Tensor, rel: float) -> None:
    scale = float(dense.abs().max())
    assert float((sparse - dense).abs().max()) <= rel * scale, float((sparse - dense).abs().max()) / scale


@pytest.mark.parametrize("kind", ABLATIONS)
@pytest.mark.parametrize("family", FAMILIES)
@torch.no_grad()
def test_sparse_path_equals_dense_path(models, family: str, kind: str) -> None:
    model, runtime = models[family]
    clean, corrupt = tokens(0), tokens(1)
    ablated = ablated_run(runtime, kind, clean, corrupt)
    masks = few_removed(runtime, seed=len(family))
    sparse = runtime.forward(clean, masks, ablated, path="sparse")
    dense = runtime.forward(clean, masks, ablated, path="dense")
    assert_close(sparse, dense, 1e-12)  # float64 models
    assert_close(sparse[0], model(clean), 1e-12)
    for row in range(1, len(masks)):  # every removal changes the output, so none is skipped
        assert float((dense[row] - dense[0]).abs().max()) > 1e-6, row


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("batch", list(BATCHES))
@torch.no_grad()
def test_sparse_path_on_a_padded_batch(batch: str, side: str) -> None:
    model, clean, corrupt, padding = BATCHES[batch](side)
    runtime = MaskedRuntime(model)
    masks = few_removed(runtime, seed=2, removed=[0, 1, 2, 1])
    for kind in ["corrupted", "mean", "zero-token"]:
        ablated = ablated_run(runtime, kind, clean, corrupt, padding)
        sparse = runtime.forward(clean, masks, ablated, path="sparse")
        dense = runtime.forward(clean, masks, ablated, path="dense")
        real = padding.bool()
        assert_close(sparse[:, real], dense[:, real], 1e-5)


@torch.no_grad()
def test_sparse_path_in_bf16_is_as_close_to_float32_as_the_dense_path() -> None:
    """Both paths compute in the model's dtype; against the float32 model, the sparse path
    loses no more than the dense one (which sums every edge in bf16)."""
    clean, corrupt = tokens(0), tokens(1)
    logits = {}
    for dtype in ["float32", "bfloat16"]:
        runtime = MaskedRuntime(load_model(f"random:llama3{TEST_SIZE}", seed=0, dtype=dtype))
        ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
        masks = few_removed(runtime, seed=3)
        logits[dtype] = {path: runtime.forward(clean, masks, ablated, path=path) for path in ("sparse", "dense")}
    exact = logits["float32"]["dense"]
    scale = float(exact.abs().max())
    error = {path: float((logits["bfloat16"][path] - exact).abs().max()) / scale for path in ("sparse", "dense")}
    assert logits["bfloat16"]["sparse"].dtype == torch.float32  # logits widened as the dense path's
    assert error["sparse"] <= 1.25 * error["dense"] and error["sparse"] < 0.05, error
    assert float((exact - exact[0]).abs().max()) > 0.1 * scale  # the removals matter at bf16's scale


@pytest.mark.parametrize("family", ["gpt2", "gemma2", "llama3"])
@torch.no_grad()
def test_auto_path_patches_single_edges_as_a_hand_written_hook_does(models, family: str, dense_refused) -> None:
    """Exact patching's masks (one edge off each, stacked, plus the full circuit) run sparse,
    and each row is the textbook hook patch of its edge."""
    model, runtime = models[family]
    graph = runtime.graph
    clean, corrupt = tokens(0), tokens(1)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    edges = ["a0.h1->a1.h2<k>", "input->a2.h3<v>", "m0->a1.h0<q>", "a1.h1->logits", "a0.h3->m1"]
    masks = graph.masks_without(torch.tensor([graph.edge_names.index(edge) for edge in edges]))
    patched = runtime.forward(clean, masks.double(), ablated)
    for edge, got in zip(edges, patched, strict=True):
        expected = hand_patched_logits(model, clean, corrupt, edge)
        assert torch.allclose(got, expected, atol=1e-9, rtol=0), edge
    full = runtime.forward(clean, graph.mask().double(), ablated)
    assert torch.allclose(full, model(clean), atol=1e-12, rtol=0)


@pytest.mark.parametrize("batch", list(BATCHES))
@torch.no_grad()
def test_auto_path_on_a_padded_batch_patches_as_each_sequence_alone(batch: str, dense_refused) -> None:
    model, clean, corrupt, padding = BATCHES[batch]("left")
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt, attention_mask=padding)
    edges = {"causal": ["input->a0.h1<q>", "a0.h2->a1.h0<v>", "m1->m2"], "tracr": ["input->a0.h0<v>", "m0->m1"]}[batch]
    masks = graph.masks_without(torch.tensor([graph.edge_names.index(edge) for edge in edges]))
    patched = runtime.forward(clean, masks, ablated)
    for edge, got in zip(edges, patched, strict=True):
        for i in range(len(clean)):
            real = padding[i].bool()
            expected = hook_patch_one_edge(model, edge, clean[i, real][None], corrupt[i, real][None])[0]
            assert float((got[i, real] - expected).abs().max()) < 1e-4, (edge, i)


def test_auto_path_keeps_dense_for_fractional_graded_or_many_removed_masks(models, dense_refused) -> None:
    _, runtime = models["gpt2"]
    clean, corrupt = tokens(0), tokens(1)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    ones = runtime.graph.real_edge_mask.double()
    half = ones.clone()
    half[:, : half.shape[1] // 2] = 0
    for mask in [0.5 * ones, ones.clone().requires_grad_(True), half]:
        with pytest.raises(AssertionError, match="dense path ran"):
            runtime.forward(clean, mask, ablated)
    with pytest.raises(ValueError, match="only 0 and 1"):
        runtime.forward(clean, 0.5 * ones, ablated, path="sparse")
    with pytest.raises(ValueError, match="valid choices: auto, dense, sparse"):
        runtime.forward(clean, ones, ablated, path="fast")  # type: ignore[arg-type]
