"""ACDC: batched engine against one-edge-at-a-time, thresholds, a known circuit, the Tracr models."""

from __future__ import annotations

import copy
import functools
import warnings

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, prepare_run
from bench.graph import Graph, GraphSpec
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods.acdc import (
    DEFAULT_TAUS,
    DEFAULT_WINDOW,
    AcdcSweep,
    acdc,
    acdc_sweep,
    destination_groups,
    destination_order,
    incoming_edges,
    parse_taus,
    prune_dead_ends,
)
from tasks import TASKS
from tasks.base import TaskData
from tests.conftest import tiny_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These forwards are tiny: a second thread only adds synchronisation, and on a busy
    2-core machine it made this file 5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def logit_diff(logits: torch.Tensor) -> torch.Tensor:
    return logits[..., -1, 3] - logits[..., -1, 7]


def make_run(model: HookedTransformer, ablation: str = "corrupted", **options: object) -> DiscoveryRun:
    gen = torch.Generator().manual_seed(11)
    clean = torch.randint(0, 50, (4, 6), generator=gen)
    corrupt = torch.randint(0, 50, (4, 6), generator=gen)
    data = TaskData(clean, corrupt, logit_diff, "logit diff")
    return prepare_run(MaskedRuntime(model), data, ablation, options=options)


def names(run: DiscoveryRun, kept: torch.Tensor) -> set[str]:
    return {run.graph.edge_names[i] for i in torch.nonzero(kept).flatten().tolist()}


# --- the batched engine takes exactly the one-at-a-time decisions ------------------------------


@functools.cache
def one_at_a_time(shape: str, metric: str, taus: tuple[float, ...]) -> AcdcSweep:
    return acdc_sweep(make_run(tiny_model(shape, dtype=torch.float64)), taus, metric, batched=False)


@pytest.mark.parametrize(
    ("shape", "metric", "window"),
    [
        ("ln-gelu", "kl", DEFAULT_WINDOW),
        ("ln-gelu", "task", DEFAULT_WINDOW),
        ("ln-gelu", "kl", 5),  # a destination's candidates over several forwards
        ("attn-only-shortformer", "kl", DEFAULT_WINDOW),
        ("attn-only-shortformer", "kl", 64),  # every candidate of a destination in one forward
        ("attn-only-shortformer", "task", DEFAULT_WINDOW),
    ],
)
def test_batched_equals_one_edge_at_a_time(shape: str, metric: str, window: int) -> None:
    run = make_run(tiny_model(shape, dtype=torch.float64))
    taus = (1e-4, 1e-3, 1e-2)
    fast = acdc_sweep(run, taus, metric, batched=True, window=window)
    slow = one_at_a_time(shape, metric, taus)
    sizes = slow.circuits.sum(1).tolist()
    assert all(0 < size < run.graph.n_edges for size in sizes) and len(set(sizes)) == 3, sizes
    assert torch.equal(fast.circuits, slow.circuits)
    assert slow.forwards == slow.masks  # the reference runs one mask per forward
    assert fast.forwards < slow.forwards / 3
    # The reference computes the whole model per mask: every head, MLP and the unembedding.
    spec = run.graph.spec
    whole = (spec.n_layers * spec.n_heads + len(run.graph.mlp_dst) + 1) * run.data.clean.numel()
    assert slow.node_tokens == slow.masks * whole
    assert 0 < fast.node_tokens < slow.node_tokens / 2  # incremental: only what a removal reaches


def textbook_acdc(run: DiscoveryRun, tau: float, metric: str) -> set[str]:
    """Algorithm 1 written out plainly: one masked forward per tried edge."""
    graph = run.graph

    def badness(kept: torch.Tensor) -> float:
        logits = run.runtime.forward(run.data.clean, graph.to_matrix(kept.double()), run.ablated)
        return (run.kl_to_full(logits) if metric == "kl" else -run.objective(logits)).item()

    kept = torch.ones(graph.n_edges, dtype=torch.bool)
    current = badness(kept)
    for dst in destination_order(graph):
        node = graph.destination_node(graph.destinations[dst])
        incoming = sorted(torch.nonzero(graph.edge_dst == dst).flatten().tolist(), key=lambda e: -graph.edge_src[e])
        if node != "logits" and not kept[graph.edge_src == graph.src_index[node]].any():
            kept[incoming] = False  # nothing reads this node any more
            continue
        for edge in incoming:
            kept[edge] = False
            new = badness(kept)
            if new - current < tau:
                current = new
            else:
                kept[edge] = True
    return names(run, kept)


@pytest.mark.parametrize("metric", ["kl", "task"])
def test_engine_equals_the_textbook_algorithm(metric: str) -> None:
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    sweep = acdc_sweep(run, (1e-3,), metric)
    assert names(run, sweep.circuits[0]) == textbook_acdc(run, 1e-3, metric)


def test_visiting_order_is_acdcs_reverse_topological_order() -> None:
    graph = Graph.from_spec(GraphSpec(n_layers=2, n_heads=2, mlp_layers=(True, True)))
    order = [graph.destinations[d] for d in destination_order(graph)]
    assert order[:8] == ["logits", "m1", "a1.h1<v>", "a1.h0<v>", "a1.h1<k>", "a1.h0<k>", "a1.h1<q>", "a1.h0<q>"]
    assert order[8] == "m0" and sorted(order) == sorted(graph.destinations)


@pytest.mark.parametrize("mlp_layers", [(True, True, True), (False, False, False), (True, False, True)])
def test_destination_groups_hold_one_layers_heads_and_keep_the_order(mlp_layers: tuple[bool, ...]) -> None:
    """A group is decided as one candidate sequence, which is exact only if no head in it
    feeds another: so a group may hold the head inputs of one layer, never of two."""
    graph = Graph.from_spec(GraphSpec(n_layers=3, n_heads=2, mlp_layers=mlp_layers))
    groups = destination_groups(graph)
    assert [d for group in groups for d in group] == destination_order(graph)
    head_groups = [group for group in groups if len(group) > 1]
    assert len(head_groups) == 3
    for layer, group in zip(reversed(range(3)), head_groups, strict=True):
        assert sorted(group) == list(range(graph.layer_head_dst[layer].start, graph.layer_head_dst[layer].stop))


# --- scores: thresholds give back the circuits ----------------------------------------------------


def test_thresholding_scores_gives_the_union_of_circuits_at_larger_taus() -> None:
    """Greedy circuits need not be nested (here a few edges removed at a small tau survive
    at a larger one): `scores >= tau` is the union of the circuits at taus >= tau, which
    is circuit(tau) exactly where the circuits are nested; each branch of the shared
    sweep equals the single-tau run."""
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    taus = DEFAULT_TAUS[:4]
    sweep = acdc_sweep(run, taus)
    assert not sweep.nested
    for k, tau in enumerate(taus):
        assert torch.equal(acdc_sweep(run, (tau,)).circuits[0], sweep.circuits[k])
        assert torch.equal(sweep.scores >= tau, sweep.circuits[k:].any(0))
        nested_above = bool((sweep.circuits[k + 1 :] <= sweep.circuits[k]).all())
        assert torch.equal(sweep.scores >= tau, sweep.circuits[k]) == nested_above
    assert torch.equal(sweep.scores >= taus[-1], sweep.circuits[-1])


@pytest.mark.filterwarnings("ignore:ACDC circuits are not nested")
def test_registered_method_scores_are_the_largest_surviving_tau() -> None:
    run = make_run(tiny_model("ln-gelu"), taus="1e-3,1e-2")
    sweep = acdc_sweep(run, (1e-3, 1e-2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = acdc(run).values
    assert any("not nested" in str(w.message) for w in caught) == (not sweep.nested)
    high, low, zero = (torch.tensor(tau, dtype=torch.float64) for tau in (1e-2, 1e-3, 0.0))
    assert torch.equal(scores, torch.where(sweep.circuits[1], high, torch.where(sweep.circuits[0], low, zero)))


# --- a model whose circuit is known -----------------------------------------------------------------

LIVE_HEADS = {(0, 1), (1, 2), (2, 3)}


def three_head_model() -> HookedTransformer:
    """Every MLP and every head but a0.h1, a1.h2, a2.h3 writes exactly zero, so only edges
    among input, those three heads and logits can change the output (and all of them do)."""
    model = tiny_model("ln-gelu", dtype=torch.float64)
    with torch.no_grad():
        for layer, block in enumerate(model.blocks):
            for head in range(model.cfg.n_heads):
                if (layer, head) not in LIVE_HEADS:
                    block.attn.W_O[head] = 0.0
            block.mlp.W_out.zero_()
            block.mlp.b_out.zero_()
    return model


@pytest.mark.parametrize("ablation", ["corrupted", "zero"])
@pytest.mark.parametrize("batched", [True, False])
def test_known_circuit_is_found_and_dead_nodes_are_never_tried(ablation: str, batched: bool) -> None:
    run = make_run(three_head_model(), ablation)
    sweep = acdc_sweep(run, (1e-6,), batched=batched)
    nodes = ["input", "a0.h1", "a1.h2", "a2.h3"]
    expected = {f"{u}->{v}<{x}>" for i, v in enumerate(nodes[1:], 1) for u in nodes[:i] for x in "qkv"}
    expected |= {f"{u}->logits" for u in nodes}
    assert names(run, sweep.circuits[0]) == expected
    if not batched:
        # Clean-up during the visit: once a node has no kept outgoing edge, its inputs are
        # removed untested. Tried: the full graph, 16 edges into logits, then only the live
        # heads' q/k/v inputs (11, 6 and 1 upstream sources each).
        assert sweep.masks == 1 + 16 + 3 * (11 + 6 + 1)


def test_prune_dead_ends_drops_edges_that_cannot_reach_the_logits() -> None:
    graph = Graph.from_spec(GraphSpec(n_layers=2, n_heads=2, mlp_layers=(False, False)))
    edges = [
        "input->a0.h0<v>",  # a0.h0 only feeds a1.h1, which feeds nothing: both go
        "a0.h0->a1.h1<q>",
        "input->a0.h1<k>",  # a0.h1 -> a1.h0 -> logits: the chain stays
        "a0.h1->a1.h0<v>",
        "a1.h0->logits",
        "input->logits",
    ]
    kept = graph.to_edges(graph.mask(edges)).bool()
    pruned = prune_dead_ends(graph, kept)
    assert {graph.edge_names[i] for i in torch.nonzero(pruned).flatten()} == set(edges[2:])
    both = prune_dead_ends(graph, torch.stack([kept, pruned]))  # batched over circuits
    assert torch.equal(both[0], pruned) and torch.equal(both[1], pruned)


def test_every_kept_edge_has_a_path_to_the_logits() -> None:
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    sweep = acdc_sweep(run, DEFAULT_TAUS[::2])
    assert sweep.circuits.any()
    assert torch.equal(prune_dead_ends(run.graph, sweep.circuits), sweep.circuits)


# --- the Tracr models ---------------------------------------------------------------------------------


TRACR_EXAMPLES = 64  # of 243 (reverse) and 256 (xproportion) inputs; enough, and quick


def tracr_run(task_name: str, ablation: str, **options: object) -> DiscoveryRun:
    task = TASKS.get(task_name)
    model = load_model(task.model)
    data = task.build(model, TRACR_EXAMPLES, 0)
    return prepare_run(MaskedRuntime(model), data, ablation, options=options)


def faithfulness(run: DiscoveryRun, kept: torch.Tensor) -> float:
    graph, clean = run.graph, run.data.clean
    with torch.no_grad():
        values = [
            run.objective(run.runtime.forward(clean, mask, run.ablated)).item()
            for mask in (graph.to_matrix(kept.float()), graph.mask(), graph.mask(value=0.0))
        ]
    circuit, full, empty = values
    return (circuit - empty) / (full - empty)


@pytest.mark.parametrize("ablation", ["zero", "corrupted"])
@pytest.mark.parametrize("task_name", ["tracr-reverse", "tracr-xproportion"])
def test_tracr_circuit_is_small_and_faithful(task_name: str, ablation: str) -> None:
    run = tracr_run(task_name, ablation)
    sweep = acdc_sweep(run)  # KL on tracr-reverse, the task metric on xproportion (one output)
    kept = sweep.circuits[sweep.taus.index(DEFAULT_TAUS[6])]  # tau = 1e-2
    assert 1 <= int(kept.sum()) <= run.graph.n_edges // 4
    assert faithfulness(run, kept) > 0.99
    assert sweep.nested


TRACR_SETTINGS = [(name, kind) for name in ("tracr-reverse", "tracr-xproportion") for kind in TASKS.get(name).ablations]


@pytest.mark.parametrize(("task_name", "ablation"), TRACR_SETTINGS)
def test_tracr_scores_thresholded_at_each_grid_tau_give_that_taus_run(task_name: str, ablation: str) -> None:
    """What a results file stores (the method's scores, as Python floats) compared with each
    tau of the grid, as a user would threshold them, gives back the single-tau run: no edge
    that survives exactly at tau is lost to rounding."""
    run = tracr_run(task_name, ablation)
    scores = acdc(run).values.tolist()
    for tau in DEFAULT_TAUS:
        kept = torch.tensor([score >= tau for score in scores])
        assert torch.equal(kept, acdc_sweep(run, (tau,)).circuits[0]), tau
    assert {*scores} - {0.0} <= set(DEFAULT_TAUS) and max(scores) > 0


def test_edges_are_tried_in_a_fixed_order() -> None:
    """Destination by destination, latest source first; fixed by the graph, not by hashing."""
    graph = Graph.from_spec(GraphSpec(n_layers=2, n_heads=2, mlp_layers=(True, True)))
    order = [graph.edge_names[e] for d in destination_order(graph) for e in incoming_edges(graph, d).tolist()]
    assert order[:7] == [
        "m1->logits", "a1.h1->logits", "a1.h0->logits", "m0->logits", "a0.h1->logits", "a0.h0->logits", "input->logits",
    ]  # fmt: skip
    assert order[7:13] == ["a1.h1->m1", "a1.h0->m1", "m0->m1", "a0.h1->m1", "a0.h0->m1", "input->m1"]
    assert order[13:17] == ["m0->a1.h1<v>", "a0.h1->a1.h1<v>", "a0.h0->a1.h1<v>", "input->a1.h1<v>"]
    assert sorted(order) == sorted(graph.edge_names)


@pytest.mark.parametrize("ablation", ["zero", "mean"])
def test_batched_equals_one_edge_at_a_time_on_inputs_of_every_length(ablation: str) -> None:
    """tracr-reverse on its padded mixed-length data (float64, so no near-tie flips): the
    incremental engine takes the decisions of one masked forward per tried edge."""
    task = TASKS.get("tracr-reverse")
    model = copy.deepcopy(load_model(task.model)).to(torch.float64)
    run = prepare_run(MaskedRuntime(model), task.build(model, TRACR_EXAMPLES, 0), ablation)
    assert run.data.attention_mask is not None
    taus = (1e-3, 1e-1)
    fast, slow = acdc_sweep(run, taus, batched=True), acdc_sweep(run, taus, batched=False)
    assert torch.equal(fast.circuits, slow.circuits)
    assert all(0 < size < run.graph.n_edges / 4 for size in slow.circuits.sum(1).tolist())


def test_auto_metric_is_the_task_metric_for_a_single_output_logit() -> None:
    run = tracr_run("tracr-xproportion", "zero")
    assert torch.equal(acdc_sweep(run, (1e-2,)).circuits, acdc_sweep(run, (1e-2,), metric="task").circuits)
    with pytest.raises(ValueError, match="use acdc_metric=task"):
        acdc_sweep(run, (1e-2,), metric="kl")


# --- determinism and options ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ACDC circuits are not nested")
def test_two_runs_give_identical_scores() -> None:
    first = acdc(make_run(tiny_model(), taus="1e-3,1e-2")).values
    second = acdc(make_run(tiny_model(), taus="1e-3,1e-2")).values
    assert torch.equal(first, second) and first.abs().max() > 0


@pytest.mark.filterwarnings("ignore:ACDC circuits are not nested")
def test_options_are_checked() -> None:
    assert parse_taus("1e-2, 1e-3") == (1e-3, 1e-2)
    assert parse_taus(0.5) == (0.5,)
    with pytest.raises(ValueError, match="distinct finite"):
        parse_taus("1e-3,1e-3")
    with pytest.raises(ValueError, match="valid choices: auto, kl, task"):
        acdc(make_run(tiny_model(), acdc_metric="l2"))
    with pytest.raises(ValueError, match="acdc_window must be a positive integer, got 0"):
        acdc(make_run(tiny_model(), acdc_window=0))
