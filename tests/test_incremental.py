"""The incremental runtime computes what the masked runtime computes, for circuits near a known one."""

from __future__ import annotations

import copy

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.graph import Graph
from bench.incremental import CircuitState, IncrementalRuntime
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from bench.zoo.tracr_models import build_tracr_model
from tasks.base import select_positions
from tests.conftest import TINY_SHAPES, tiny_model

POSITIONS = {
    "all": None,
    "last": slice(-1, None),
    "per example": torch.tensor([5, 2, 3]),  # one output position per example, as the text tasks
    "several": slice(2, None),  # as the Tracr tasks (every position after BOS)
}


def group_edges(graph: Graph, layer: int) -> torch.Tensor:
    """Edges into the destinations ACDC decides together at `layer` (n_layers: the logits)."""
    if layer == graph.spec.n_layers:
        dsts = [graph.logits_dst]
    else:
        heads = graph.layer_head_dst[layer]
        dsts = list(range(heads.start, heads.stop)) + ([graph.mlp_dst[layer]] if layer in graph.mlp_dst else [])
    return torch.nonzero(torch.isin(graph.edge_dst, torch.tensor(dsts))).flatten()


def objective_of(positions: slice | torch.Tensor | None) -> tuple:
    """A nonlinear objective of the logits, on the positions it reads, and on full logits."""

    def at_positions(logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, -1)[..., -1].sum(-1).mean(-1) + logits.pow(2).mean((-1, -2, -3))

    def of_full(logits: torch.Tensor) -> torch.Tensor:
        return at_positions(logits if positions is None else select_positions(logits, positions))

    return at_positions, of_full


@pytest.mark.parametrize("positions", list(POSITIONS))
@pytest.mark.parametrize("ablation", ["corrupted", "mean", "zero"])
@pytest.mark.parametrize("shape", list(TINY_SHAPES))
def test_incremental_equals_the_masked_forward_along_a_pruning_run(shape: str, ablation: str, positions: str) -> None:
    """Prune layer by layer from the logits back, as ACDC does: at each layer evaluate
    several circuits that take random edges into it away from the current one, compare
    every value with a full masked forward, and go on from one of them. Later layers then
    run from states that an earlier evaluation built."""
    prune_and_compare(shape, ablation, positions)


@pytest.mark.parametrize("shape", ["ln-gelu", "parallel-rotary"])
def test_computing_every_head_of_a_touched_layer_gives_the_same(shape: str) -> None:
    """The path for attention that cannot be restricted to some heads (e.g. ALiBi)."""
    prune_and_compare(shape, "corrupted", "per example", head_subsets=False)


@pytest.mark.parametrize("shape", ["ln-gelu", "attn-only-shortformer"])
@pytest.mark.parametrize("positions", ["all", "several"])
def test_rebuilding_inputs_from_the_sources_gives_the_same(shape: str, positions: str) -> None:
    """The path for models too large to cache every destination's input in each state."""
    prune_and_compare(shape, "mean", positions, cache_inputs=False)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("shape", list(TINY_SHAPES))
def test_padded_inputs_give_the_masked_forward(shape: str, side: str) -> None:
    """Sequences of 7, 4 and 6 tokens padded on either side (absolute, shortformer and
    rotary positions offset by the mask), with mean ablation over real positions only."""
    prune_and_compare(shape, "mean", "per example", padding=side)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("ablation", ["corrupted", "zero"])
def test_padded_inputs_give_the_masked_forward_under_every_ablation(ablation: str, side: str) -> None:
    prune_and_compare("ln-gelu", ablation, "several", padding=side)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("ablation", ["zero", "mean"])
def test_a_bidirectional_tracr_model_on_every_length(ablation: str, side: str) -> None:
    """tracr-reverse on inputs of every length 1..5: padded keys are masked in the engine's
    attention too (TransformerLens masks them in causal attention only)."""
    tracr = build_tracr_model("reverse")
    inputs = [(1,), (2, 3), (3, 1, 2), (1, 1, 2, 3), (3, 2, 1, 2, 1), (2, 1)]
    corrupt = [(3,), (1, 1), (2, 2, 1), (3, 3, 1, 2), (1, 3, 3, 2, 2), (1, 3)]
    clean, mask = tracr.encode_padded(inputs, side)
    corrupted, _ = tracr.encode_padded(corrupt, side)
    model = copy.deepcopy(load_model("tracr-reverse")).to(torch.float64)
    prune_and_compare(model, ablation, "several", padding=(clean, corrupted, mask))


def padded_tokens(side: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean and corrupted `[3, 7]` batches of 7, 4 and 6 real tokens padded on `side`, and the mask."""
    mask = (torch.arange(7)[None] < torch.tensor([7, 4, 6])[:, None]).long()
    if side == "left":
        mask = mask.flip(1)
    clean, corrupt = (torch.randint(0, 50, (3, 7), generator=gen).masked_fill(mask == 0, 49) for _ in range(2))
    return clean, corrupt, mask


def prune_and_compare(
    shape: str | HookedTransformer,
    ablation: str,
    positions: str,
    head_subsets: bool = True,
    cache_inputs: bool = True,
    padding: str | tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """`padding`: a side to pad random tokens on, or (clean, corrupted, attention mask)."""
    model: HookedTransformer = tiny_model(shape, dtype=torch.float64) if isinstance(shape, str) else shape
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    gen = torch.Generator().manual_seed(3)
    clean, corrupt, reference = (torch.randint(0, 50, (3, 7), generator=gen) for _ in range(3))
    attention_mask = None
    if isinstance(padding, str):
        clean, corrupt, attention_mask = padded_tokens(padding, gen)
    elif padding is not None:
        clean, corrupt, attention_mask = padding
    if attention_mask is not None:  # the mean over the corrupted inputs' real positions
        reference = corrupt
    ablated = runtime.ablate(
        ablation,
        corrupted_tokens=corrupt,
        reference_tokens=reference,
        like=clean,
        attention_mask=attention_mask,
        reference_mask=attention_mask,
    )
    assert (ablated.attention_mask is None) == (attention_mask is None)
    at_positions, of_full = objective_of(POSITIONS[positions])
    engine = IncrementalRuntime(runtime, clean, ablated, at_positions, POSITIONS[positions], cache_inputs)
    assert engine.head_subsets
    engine.head_subsets = head_subsets

    def reference_value(kept: torch.Tensor) -> torch.Tensor:
        return of_full(runtime.forward(clean, graph.to_matrix(kept.double()), ablated))

    state: CircuitState = engine.initial()
    assert state.value == pytest.approx(float(reference_value(state.kept)), abs=1e-10)
    for layer in reversed(range(graph.spec.n_layers + 1)):
        edges = group_edges(graph, layer)
        masks = state.kept.expand(4, -1).clone()
        for row in range(1, 4):  # row 0 is the state itself
            masks[row, edges[torch.rand(len(edges), generator=gen) < 0.3 * row]] = False
        result = engine.evaluate(state, masks, min(layer, graph.spec.n_layers - 1))
        expected = reference_value(masks)
        assert torch.allclose(torch.tensor(result.values, dtype=torch.float64), expected, atol=1e-10, rtol=0), layer
        if isinstance(shape, str):  # in a random model every removal makes a difference
            assert len(set(result.values[1:])) == 3
        state = result.state(2)
        assert all(x is None for x in state.inputs) != cache_inputs
    assert (~state.kept).sum() > graph.n_edges / 4
    assert state.value != engine.initial().value


def test_untouched_logits_give_the_states_value_without_a_forward() -> None:
    """Edges into a node that no kept edge reads change nothing downstream."""
    model = tiny_model("ln-gelu", dtype=torch.float64)
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    clean = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    engine = IncrementalRuntime(runtime, clean, runtime.ablate("zero", like=clean), lambda x: x.sum((1, 2, 3)))
    state = engine.initial()
    head = graph.src_index["a1.h2"]
    state = state.without_unread(torch.nonzero(graph.edge_src == head).flatten())  # nothing reads a1.h2
    into_head = torch.nonzero(torch.isin(graph.edge_dst, torch.tensor([graph.dst_index[f"a1.h2<{x}>"] for x in "qkv"])))
    masks = state.kept.expand(2, -1).clone()
    masks[1, into_head.flatten()] = False
    result = engine.evaluate(state, masks, 1)
    assert result.values == [state.value, state.value]
    assert list(result.deltas) == [head] and graph.logits_dst not in result.inputs  # nothing after it ran
