"""The incremental runtime computes what the masked runtime computes, for circuits near a known one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.graph import Graph
from bench.incremental import CircuitState, IncrementalRuntime
from bench.runtime import MaskedRuntime
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
        return torch.log_softmax(logits, -1)[..., 7].sum(-1).mean(-1) + logits.pow(2).mean((-1, -2, -3))

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


def prune_and_compare(
    shape: str, ablation: str, positions: str, head_subsets: bool = True, cache_inputs: bool = True
) -> None:
    model: HookedTransformer = tiny_model(shape, dtype=torch.float64)
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    gen = torch.Generator().manual_seed(3)
    clean, corrupt, reference = (torch.randint(0, 50, (3, 7), generator=gen) for _ in range(3))
    ablated = runtime.ablate(ablation, corrupted_tokens=corrupt, reference_tokens=reference, like=clean)
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
        assert len(set(result.values[1:])) == 3  # the removals made a difference
        state = result.state(2)
        assert all(x is None for x in state.inputs) != cache_inputs
    assert (~state.kept).sum() > graph.n_edges / 4


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


def test_left_padding_is_refused_with_the_way_out() -> None:
    """The incremental forward builds no attention mask, so left-padded prompts would be wrong."""
    model = tiny_model("ln-gelu")
    model.tokenizer = SimpleNamespace(padding_side="left")
    runtime = MaskedRuntime(model)
    clean = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"needs right padding.*batched=0"):
        IncrementalRuntime(runtime, clean, runtime.ablate("zero", like=clean), lambda x: x.sum((1, 2, 3)))
