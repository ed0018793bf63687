"""The masked-edge runtime against independent computations with plain TransformerLens hooks."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.graph import Graph
from bench.runtime import MaskedRuntime
from tests.conftest import tiny_model

TOL = 1e-4


def source_hook(graph: Graph, src: str) -> tuple[str, int | None]:
    """TransformerLens hook (and head index) where source `src` writes."""
    if src == "input":
        return "blocks.0.hook_resid_pre", None
    if src.startswith("m"):
        return f"blocks.{src[1:]}.hook_mlp_out", None
    layer, head = src[1:].split(".h")
    return f"blocks.{layer}.attn.hook_result", int(head)


def destination_hook(model: HookedTransformer, dst: str) -> tuple[str, int | None]:
    """TransformerLens hook (and head index) where destination `dst` reads."""
    if dst == "logits":
        return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", None
    if dst.startswith("m"):
        return f"blocks.{dst[1:]}.hook_mlp_in", None
    head_part, letter = dst[:-1].split("<")
    layer, head = head_part[1:].split(".h")
    return f"blocks.{layer}.hook_{letter}_input", int(head)


def hook_patch_one_edge(
    model: HookedTransformer, edge: str, clean: torch.Tensor, corrupt: torch.Tensor | None
) -> torch.Tensor:
    """Activation patching of one edge the textbook way: add (corrupt - clean) of the
    source to the destination's input only; everything else runs clean. `corrupt=None`
    patches in zero (zero ablation)."""
    graph = Graph.from_model(model)
    model.set_use_attn_result(True)  # TransformerLens's own per-head outputs, not the runtime's
    src, dst = edge.split("->")
    src_name, src_head = source_hook(graph, src)
    _, clean_cache = model.run_with_cache(clean, names_filter=src_name)
    if corrupt is None:
        diff = -clean_cache[src_name]
    else:
        _, corrupt_cache = model.run_with_cache(corrupt, names_filter=src_name)
        diff = corrupt_cache[src_name] - clean_cache[src_name]
    if src_head is not None:
        diff = diff[:, :, src_head]
    dst_name, dst_head = destination_hook(model, dst)

    def patch(x: torch.Tensor, hook: object) -> torch.Tensor:
        x = x.clone()
        if dst_head is None:
            x += diff
        else:
            x[:, :, dst_head] += diff
        return x

    try:
        return model.run_with_hooks(clean, fwd_hooks=[(dst_name, patch)])
    finally:
        model.set_use_attn_result(False)


@torch.no_grad()
def test_all_ones_mask_equals_plain_forward(any_tiny_model: HookedTransformer, token_pair) -> None:
    clean, corrupt = token_pair
    runtime = MaskedRuntime(any_tiny_model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    masked = runtime.forward(clean, runtime.graph.mask(), ablated)
    assert (masked - any_tiny_model(clean)).abs().max() < TOL


@torch.no_grad()
def test_all_zeros_mask_equals_corrupted_forward(any_tiny_model: HookedTransformer, token_pair) -> None:
    clean, corrupt = token_pair
    runtime = MaskedRuntime(any_tiny_model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    masked = runtime.forward(clean, torch.zeros_like(runtime.graph.mask()), ablated)
    assert (masked - any_tiny_model(corrupt)).abs().max() < TOL
    # and it is not trivially equal to the clean run
    assert (masked - any_tiny_model(clean)).abs().max() > 1e-2


@torch.no_grad()
def test_all_ones_on_gpt2_small_architecture(token_pair) -> None:
    from bench.zoo import load_model

    model = load_model("random:gpt2")
    clean, corrupt = (t * 1000 + 7 for t in token_pair)
    runtime = MaskedRuntime(model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    both = torch.stack([runtime.graph.mask(), torch.zeros_like(runtime.graph.mask())])
    masked = runtime.forward(clean, both, ablated)
    assert (masked[0] - model(clean)).abs().max() < TOL
    assert (masked[1] - model(corrupt)).abs().max() < TOL


EDGES = [
    "input->a0.h1<q>",
    "input->a2.h3<k>",
    "a0.h2->a1.h0<v>",
    "a1.h3->a2.h2<q>",
    "a0.h0->m0",
    "m0->a1.h1<k>",
    "m1->m2",
    "a2.h1->logits",
    "m2->logits",
    "input->logits",
]


@pytest.mark.parametrize("edge", EDGES)
@torch.no_grad()
def test_one_edge_off_equals_hook_based_patch(edge: str, token_pair) -> None:
    clean, corrupt = token_pair
    model = tiny_model("ln-gelu")
    runtime = MaskedRuntime(model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    mask = runtime.graph.mask()
    mask[runtime.graph.src_index[edge.split("->")[0]], runtime.graph.dst_index[edge.split("->")[1]]] = 0
    masked = runtime.forward(clean, mask, ablated)
    expected = hook_patch_one_edge(model, edge, clean, corrupt)
    assert (masked - expected).abs().max() < TOL
    assert (expected - model(clean)).abs().max() > 1e-3, "the patch must change something"


@pytest.mark.parametrize("shape", ["attn-only-shortformer", "parallel-rotary"])
@torch.no_grad()
def test_one_edge_off_on_other_shapes(shape: str, token_pair) -> None:
    clean, corrupt = token_pair
    model = tiny_model(shape)
    runtime = MaskedRuntime(model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    for edge in ["input->a1.h2<k>", "a0.h1->a2.h0<q>", "a1.h0->logits"]:
        src, dst = edge.split("->")
        mask = runtime.graph.mask()
        mask[runtime.graph.src_index[src], runtime.graph.dst_index[dst]] = 0
        expected = hook_patch_one_edge(model, edge, clean, corrupt)
        assert (runtime.forward(clean, mask, ablated) - expected).abs().max() < TOL


def test_mask_gradient_matches_finite_differences(token_pair) -> None:
    clean, corrupt = token_pair
    model = tiny_model("ln-gelu", dtype=torch.float64)
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    gen = torch.Generator().manual_seed(3)
    base = torch.rand(graph.n_sources, graph.n_destinations, generator=gen, dtype=torch.float64)
    readout = torch.randn(model.cfg.d_vocab, generator=gen, dtype=torch.float64)

    def metric(mask: torch.Tensor) -> torch.Tensor:
        return (runtime.forward(clean, mask, ablated)[:, -1] @ readout).mean()

    mask = base.clone().requires_grad_(True)
    metric(mask).backward()
    grad = graph.to_edges(mask.grad)
    eps = 1e-6
    for i in torch.randperm(graph.n_edges, generator=gen)[:12].tolist():
        step = graph.to_matrix(torch.nn.functional.one_hot(torch.tensor(i), graph.n_edges).double()) * eps
        with torch.no_grad():
            fd = (metric(base + step) - metric(base - step)) / (2 * eps)
        assert abs(fd.item() - grad[i].item()) < 1e-6 * max(1.0, abs(fd.item()))
    assert grad.abs().max() > 1e-4
    # cells that are not edges get no gradient
    assert mask.grad[~graph.real_edge_mask].abs().max() == 0


@torch.no_grad()
def test_batched_masks_equal_one_by_one(any_tiny_model: HookedTransformer, token_pair) -> None:
    clean, corrupt = token_pair
    runtime = MaskedRuntime(any_tiny_model)
    ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)
    gen = torch.Generator().manual_seed(5)
    masks = torch.rand(4, runtime.graph.n_sources, runtime.graph.n_destinations, generator=gen)
    masks[1] = (masks[1] > 0.5).float()
    stacked = runtime.forward(clean, masks, ablated)
    assert stacked.shape[:2] == (4, clean.shape[0])
    for i in range(4):
        assert (stacked[i] - runtime.forward(clean, masks[i], ablated)).abs().max() < TOL
    assert (stacked[0] - stacked[2]).abs().max() > 1e-3


@torch.no_grad()
def test_zero_and_mean_ablation_with_everything_off(token_pair) -> None:
    """With every edge off, the final residual is the biases (zero) or the reference
    set's mean final residual (mean), since the residual stream is a sum of outputs."""
    clean, reference = token_pair
    model = tiny_model("ln-gelu")
    runtime = MaskedRuntime(model)
    off = torch.zeros_like(runtime.graph.mask())
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"

    def logits_from_resid(resid: torch.Tensor) -> torch.Tensor:
        return model.unembed(model.ln_final(resid))

    zero = runtime.forward(clean, off, runtime.ablate("zero", like=clean))
    bias_only = sum(block.attn.b_O for block in model.blocks).expand(*clean.shape, -1)
    assert (zero - logits_from_resid(bias_only)).abs().max() < TOL

    mean = runtime.forward(clean, off, runtime.ablate("mean", reference_tokens=reference))
    _, cache = model.run_with_cache(reference, names_filter=last)
    mean_resid = cache[last].mean(0, keepdim=True).expand(clean.shape[0], -1, -1)
    assert (mean - logits_from_resid(mean_resid)).abs().max() < TOL


@pytest.mark.parametrize("shape", ["ln-gelu", "attn-only-shortformer"])
@pytest.mark.parametrize("ablation", ["zero", "zero-token"])
def test_cutting_the_input_node_under_zero_ablation_zeroes_what_it_says(shape: str, ablation: str, token_pair) -> None:
    """Every edge out of `input` at 0, all others at 1: the same as a plain forward with
    the token embedding zeroed, and under `zero` the positional embedding zeroed too where
    it is added to the residual stream (a shortformer adds it inside attention, after the
    q/k/v inputs: it is part of no node)."""
    model = tiny_model(shape, dtype=torch.float64)
    clean, _ = token_pair
    runtime = MaskedRuntime(model)
    mask = runtime.graph.mask().double()
    mask[runtime.graph.src_index["input"]] = 0
    with torch.no_grad():
        got = runtime.forward(clean, mask, runtime.ablate(ablation, like=clean))
        zeroed = ["hook_embed"] + (["hook_pos_embed"] if ablation == "zero" and shape == "ln-gelu" else [])
        expected = model.run_with_hooks(clean, fwd_hooks=[(name, lambda x, hook: 0 * x) for name in zeroed])
        plain = model(clean)
    assert (got - expected).abs().max() < 1e-10
    assert (got - plain).abs().max() > 1e-3


def test_unknown_ablation_kind_names_the_choices() -> None:
    runtime = MaskedRuntime(tiny_model())
    choices = "corrupted, mean, zero, zero-token"
    with pytest.raises(ValueError, match=f"unknown ablation kind 'resample'; valid choices: {choices}"):
        runtime.ablate("resample")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"original_architecture": "Olmo2ForCausalLM", "normalization_type": "RMS"}, "normalises each block's output"),
    ],
)
def test_models_without_one_write_per_head_are_refused(fields: dict, message: str) -> None:
    """The graph needs every head to write its own output: a post-norm is split per head only
    where that split is exact (RMSNorm without an output bias, as Gemma-2); grouped-query
    attention runs ungrouped (tests/test_architectures.py)."""
    cfg = HookedTransformerConfig(
        n_layers=1, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_vocab=10, act_fn="gelu", **fields
    )
    with pytest.raises(ValueError, match=message):
        MaskedRuntime(HookedTransformer(cfg))


def test_a_post_norm_over_an_output_bias_is_refused() -> None:
    """RMSNorm of (sum of heads + b_O) has no exact per-head split with a constant bias."""
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_vocab=10, act_fn="gelu",
        use_normalization_before_and_after=True, normalization_type="RMS",
    )  # fmt: skip
    model = HookedTransformer(cfg)
    MaskedRuntime(model)  # b_O = 0, as in Gemma-2: accepted
    with torch.no_grad():
        model.blocks[1].attn.b_O += 0.1
    with pytest.raises(ValueError, match=r"split per head only for RMSNorm .* b_O in layers \[1\]"):
        MaskedRuntime(model)
