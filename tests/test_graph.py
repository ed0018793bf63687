"""The edge graph: counts, names and the dense index, checked against closed forms; a graph
rebuilt from its edge names alone."""

from __future__ import annotations

import random

import pytest
import torch

from bench.graph import Graph, GraphSpec
from bench.zoo import load_model


def closed_form_edges(n_layers: int, n_heads: int, mlps: bool, parallel: bool = False) -> int:
    """Edge count summed layer by layer, independent of Graph's construction."""
    per_layer = n_heads + (1 if mlps else 0)
    total = 0
    for layer in range(n_layers):
        upstream = 1 + layer * per_layer
        total += 3 * n_heads * upstream
        if mlps:
            total += upstream + (0 if parallel else n_heads)
    return total + 1 + n_layers * per_layer


def test_gpt2_small_has_32491_edges() -> None:
    graph = Graph.from_model(load_model("random:gpt2"))
    assert graph.n_edges == 32_491
    assert closed_form_edges(12, 12, mlps=True) == 32_491
    assert len(set(graph.edge_names)) == 32_491
    assert graph.n_sources == 1 + 144 + 12


@pytest.mark.parametrize(
    ("spec", "mlps", "parallel"),
    [
        (GraphSpec(4, 8, (False,) * 4), False, False),
        (GraphSpec(2, 8, (False,) * 2), False, False),
        (GraphSpec(3, 4, (True,) * 3, parallel_attn_mlp=True), True, True),
        (GraphSpec(5, 2, (True,) * 5), True, False),
    ],
)
def test_edge_counts_match_closed_form(spec: GraphSpec, mlps: bool, parallel: bool) -> None:
    assert Graph(spec).n_edges == closed_form_edges(spec.n_layers, spec.n_heads, mlps, parallel)


def test_partial_mlps_drop_exactly_the_missing_mlp_nodes() -> None:
    graph = Graph(GraphSpec(3, 2, (True, False, True)))
    assert "m1" not in graph.sources and "m0" in graph.sources and "m2" in graph.sources
    assert "m1" not in graph.destinations
    assert "m0->a2.h1<k>" in graph.edge_position


def test_attention_inputs_are_split_and_same_layer_heads_do_not_connect() -> None:
    graph = Graph(GraphSpec(2, 2, (True, True)))
    names = set(graph.edge_names)
    assert {"a0.h1->a1.h0<q>", "a0.h1->a1.h0<k>", "a0.h1->a1.h0<v>"} <= names
    assert "a0.h0->a0.h1<q>" not in names
    assert "a0.h0->m0" in names and "m0->a0.h0<q>" not in names
    parallel = Graph(GraphSpec(2, 2, (True, True), parallel_attn_mlp=True))
    assert "a0.h0->m0" not in parallel.edge_names and "a0.h0->m1" in parallel.edge_names


def test_matrix_round_trip_and_real_edge_mask() -> None:
    graph = Graph(GraphSpec(3, 3, (True,) * 3))
    values = torch.arange(graph.n_edges, dtype=torch.float32)
    dense = graph.to_matrix(values, fill=float("nan"))
    assert torch.equal(graph.to_edges(dense), values)
    assert torch.isnan(dense[~graph.real_edge_mask]).all()
    assert not torch.isnan(dense[graph.real_edge_mask]).any()
    for name in ["a1.h2->a2.h0<v>", "input->logits", "m2->logits"]:
        i = graph.edge_index(name)
        src, dst = name.split("->")
        assert dense[graph.src_index[src], graph.dst_index[dst]] == i


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a0.h0 to m0", "malformed edge"),
        ("a9.h0->m0", "unknown source node 'a9.h0'"),
        ("a0.h0->m7", "unknown destination 'm7'"),
        ("a2.h0->a1.h0<q>", "is not upstream of"),
    ],
)
def test_bad_edge_names_say_what_is_wrong(name: str, message: str) -> None:
    graph = Graph(GraphSpec(3, 2, (True,) * 3))
    with pytest.raises(ValueError, match=message):
        graph.edge_index(name)


def test_mask_from_edge_list() -> None:
    graph = Graph(GraphSpec(2, 2, (True, True)))
    mask = graph.mask(["input->m0", "a1.h1->logits"])
    assert mask.sum() == 2
    assert graph.to_edges(mask)[graph.edge_index("input->m0")] == 1


def test_masks_without_and_nodes_of() -> None:
    graph = Graph(GraphSpec(2, 2, (True, True)))
    ids = torch.tensor([graph.edge_index("a0.h1->m1"), graph.edge_index("input->logits")])
    masks = graph.masks_without(ids)
    assert masks.shape == (2, graph.n_sources, graph.n_destinations)
    assert graph.to_edges(masks).sum(1).tolist() == [graph.n_edges - 1] * 2
    assert graph.to_edges(masks)[0, ids[0]] == 0 and graph.to_edges(masks)[1, ids[1]] == 0
    assert graph.nodes_of(["m1->logits", "a0.h1->a1.h0<k>"]) == ["a0.h1", "a1.h0", "m1", "logits"]


@pytest.mark.parametrize(
    "spec",
    [
        GraphSpec(12, 12, (True,) * 12),
        GraphSpec(3, 4, (True,) * 3, parallel_attn_mlp=True),
        GraphSpec(4, 8, (False,) * 4),
        GraphSpec(2, 1, (True, True)),
    ],
)
def test_graph_is_rebuilt_from_shuffled_edge_names(spec: GraphSpec) -> None:
    names = Graph(spec).edge_names
    shuffled = random.Random(0).sample(names, len(names))
    rebuilt = Graph.from_edge_names(shuffled)
    assert rebuilt.spec == spec and rebuilt.edge_names == names


def test_edge_names_that_are_not_one_graph_are_named() -> None:
    names = Graph(GraphSpec(2, 1, (True, True))).edge_names
    with pytest.raises(ValueError, match=r"edge 'x3->logits': unknown node 'x3'; valid nodes: input, a\{L\}"):
        Graph.from_edge_names([*names, "x3->logits"])
    with pytest.raises(ValueError, match=r"edge 'a1.h0->logits' of the Graph\(2 layers .* is missing"):
        Graph.from_edge_names([name for name in names if name != "a1.h0->logits"])
    with pytest.raises(ValueError, match=r"m1 is not upstream of a0.h0<q>"):
        Graph.from_edge_names([*names, "m1->a0.h0<q>"])
