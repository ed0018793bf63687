"""Edge Pruning: the hard-concrete gate, the Lagrangian, determinism, a model whose relevant
edges are known by construction, and the two Tracr models."""

from __future__ import annotations

import math

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, EdgeScores, prepare_run
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from methods.edge_pruning import (
    BETA,
    LEFT,
    RIGHT,
    PruningConfig,
    choose_objective,
    circuit_size,
    deterministic_gates,
    edge_pruning,
    keep_probability,
    sample_gates,
    train_log_alpha,
)
from methods.spec import METHODS
from tasks import TASKS
from tasks.base import TaskData
from tests.conftest import tiny_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: intra-op threads only add synchronisation (a Tracr run took
    2.4x longer on two threads than on one on a loaded two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def logit_diff(logits: torch.Tensor) -> torch.Tensor:
    return logits[..., -1, 3] - logits[..., -1, 7]


def tiny_run(model: HookedTransformer, seed: int = 0, **options: object) -> DiscoveryRun:
    gen = torch.Generator().manual_seed(11)
    clean = torch.randint(0, 50, (16, 6), generator=gen)
    corrupt = torch.randint(0, 50, (16, 6), generator=gen)
    data = TaskData(clean, corrupt, logit_diff, "logit diff")
    return prepare_run(MaskedRuntime(model), data, "corrupted", seed=seed, options=options)


def circuit_mask(run: DiscoveryRun, scores: EdgeScores, k: int) -> torch.Tensor:
    flat = torch.zeros(run.graph.n_edges)
    flat[scores.ranking()[:k]] = 1.0
    return run.graph.to_matrix(flat)


# --- the hard-concrete gate ------------------------------------------------------------------


def test_deterministic_gate_is_in_the_unit_interval_monotone_and_saturates() -> None:
    log_alpha = torch.linspace(-50, 50, 2001)
    gates = deterministic_gates(log_alpha)
    assert gates.min() == 0.0 and gates.max() == 1.0
    assert (gates.diff() >= 0).all()
    # sigmoid(0) = 1/2 stretched to (-0.1, 1.1) is 1/2; closed below log(1/11), open above log(11)
    assert deterministic_gates(torch.tensor([0.0, -2.5, 2.5])).tolist() == pytest.approx([0.5, 0.0, 1.0])


@pytest.mark.parametrize("log_alpha", [-3.0, -1.0, 0.0, 1.0, 3.0])
def test_samples_are_in_the_unit_interval_and_the_l0_formula_matches_monte_carlo(log_alpha: float) -> None:
    n = 200_000
    gen = torch.Generator().manual_seed(0)
    z = sample_gates(torch.full((n,), log_alpha), gen)
    assert z.min() >= 0.0 and z.max() <= 1.0
    tolerance = 5 * math.sqrt(0.25 / n)  # five standard errors of a proportion
    expected_nonzero = keep_probability(torch.tensor(log_alpha)).item()
    assert (z > 0).double().mean().item() == pytest.approx(expected_nonzero, abs=tolerance)
    # the stretch puts mass exactly on 1 too: P(z = 1) = sigmoid(log_alpha - beta log((1 - l) / (r - 1)))
    expected_one = 1 / (1 + math.exp(-(log_alpha - BETA * math.log((1 - LEFT) / (RIGHT - 1)))))
    assert (z == 1).double().mean().item() == pytest.approx(expected_one, abs=tolerance)


def test_samples_are_seeded_and_differentiable() -> None:
    log_alpha = torch.zeros(1000, requires_grad=True)
    first = sample_gates(log_alpha, torch.Generator().manual_seed(3))
    second = sample_gates(log_alpha, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    first.sum().backward()
    interior = (first > 0) & (first < 1)
    assert (log_alpha.grad[interior] > 0).all() and (log_alpha.grad[~interior] == 0).all()


# --- the training loop -----------------------------------------------------------------------


def test_same_seed_gives_bit_identical_scores_and_another_seed_does_not() -> None:
    model = tiny_model()
    first, second, other = (edge_pruning(tiny_run(model, seed, steps=40)).values for seed in (0, 0, 1))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_lagrangian_drives_the_expected_density_to_a_reachable_target() -> None:
    """On a random model every edge helps a little, so only the sparsity term prunes. At
    lr 0.1: at the default 0.05 (tuned for the default target 1.02, as sparse as the
    objective allows) the gates lag the multipliers and this 300-step run ends at density 0.39."""
    records = []
    train_log_alpha(tiny_run(tiny_model()), PruningConfig(target=0.5, lr=0.1), records.append)
    assert records[-1].target == 0.5
    assert records[-1].density == pytest.approx(0.5, abs=0.03)
    assert records[-1].lambda2 > 0, "the quadratic multiplier only grows under gradient ascent"


def test_training_leaves_the_model_untouched_even_under_no_grad() -> None:
    model = tiny_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        edge_pruning(tiny_run(model, steps=5))
    for name, p in model.named_parameters():
        assert p.grad is None and not p.requires_grad, name  # the runtime froze the weights
        assert torch.equal(p, before[name]), name


KNOWN_HEADS = {0: 1, 2: 3}  # layer -> the only head that writes anything


def known_circuit_model() -> tuple[HookedTransformer, list[str]]:
    """A 3-layer model where only a0.h1 and a2.h3 write to the residual stream (every other
    head's W_O and every MLP's output weights are zero), with sharpened attention so that
    their q/k inputs matter. Only edges among input, a0.h1, a2.h3 and logits can matter."""
    model = tiny_model("ln-gelu")
    with torch.no_grad():
        for layer, block in enumerate(model.blocks):
            for head in range(model.cfg.n_heads):
                if KNOWN_HEADS.get(layer) == head:
                    block.attn.W_Q[head] *= 8
                    block.attn.W_K[head] *= 8
                    block.attn.W_O[head] *= 4
                else:
                    block.attn.W_O[head].zero_()
            block.mlp.W_out.zero_()
            block.mlp.b_out.zero_()
    writers = {"input", *(f"a{layer}.h{head}" for layer, head in KNOWN_HEADS.items())}
    readers = {"logits", *(f"a{layer}.h{head}" for layer, head in KNOWN_HEADS.items())}
    graph = MaskedRuntime(model).graph
    relevant = [
        e
        for e in graph.edge_names
        if e.split("->")[0] in writers and graph.destination_node(e.split("->")[1]) in readers
    ]
    return model, relevant


def test_keeps_the_edges_that_matter_and_prunes_the_rest_on_a_constructed_model() -> None:
    model, relevant = known_circuit_model()
    run = tiny_run(model)
    graph, runtime = run.graph, run.runtime
    assert len(relevant) == 12
    with torch.no_grad():
        empty_kl = run.kl_to_full(runtime.forward(run.data.clean, graph.mask(value=0.0), run.ablated)).item()
        assert run.kl_to_full(runtime.forward(run.data.clean, graph.mask(relevant), run.ablated)) < 1e-6
        single_edge_cost = {}
        for i, name in enumerate(graph.edge_names):
            mask = graph.mask()
            mask[graph.edge_src[i], graph.edge_dst[i]] = 0.0
            single_edge_cost[name] = run.kl_to_full(runtime.forward(run.data.clean, mask, run.ablated)).item()
    assert max(cost for e, cost in single_edge_cost.items() if e not in relevant) < 1e-6, "construction"

    scores = edge_pruning(run)
    k = circuit_size(scores)
    kept = {graph.edge_names[i] for i in scores.ranking()[:k].tolist()}
    assert kept <= set(relevant), f"kept edges that cannot matter: {sorted(kept - set(relevant))}"
    assert {e for e, cost in single_edge_cost.items() if cost > 0.05} <= kept
    with torch.no_grad():
        circuit_kl = run.kl_to_full(runtime.forward(run.data.clean, circuit_mask(run, scores, k), run.ablated))
    assert empty_kl > 0.3 and circuit_kl < 0.01


# --- the Tracr models --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["tracr-reverse", "tracr-xproportion"])
def tracr_run(request: pytest.FixtureRequest) -> DiscoveryRun:
    task = TASKS.get(request.param)
    model = load_model(task.model)
    return prepare_run(MaskedRuntime(model), task.build(model, task.default_examples, 0), "zero")


def test_tracr_circuit_reproduces_the_full_model_with_few_edges(tracr_run: DiscoveryRun) -> None:
    run, graph = tracr_run, tracr_run.graph
    scores = edge_pruning(run)
    assert scores.values.shape == (graph.n_edges,)
    assert ((scores.values >= 0) & (scores.values <= 1)).all()
    k = circuit_size(scores)
    assert 1 <= k <= graph.n_edges // 4, f"kept {k} of {graph.n_edges} edges"
    with torch.no_grad():
        circuit = run.runtime.forward(run.data.clean, circuit_mask(run, scores, k), run.ablated)
        empty = run.runtime.forward(run.data.clean, graph.mask(value=0.0), run.ablated)
    assert run.objective(circuit) > 1e-3 * run.objective(empty), "metric: neg. L2 to the full model"
    if run.has_distribution:
        assert run.kl_to_full(circuit) < 1e-3


def test_auto_objective_falls_back_to_the_metric_where_kl_is_identically_zero(tracr_run: DiscoveryRun) -> None:
    run = tracr_run
    with torch.no_grad():
        empty = run.runtime.forward(run.data.clean, run.graph.mask(value=0.0), run.ablated)
    single_logit = run.runtime.model.cfg.d_vocab_out == 1
    assert run.has_distribution != single_logit
    if single_logit:
        with pytest.raises(ValueError, match="KL to the full model is always 0"):
            run.kl_to_full(empty)
    auto = choose_objective(run, "auto")(empty).item()
    expected = -run.objective(empty).item() if single_logit else run.kl_to_full(empty).item()
    assert auto == expected > 0.1


# --- wiring ----------------------------------------------------------------------------------


def test_registered_as_a_stochastic_method() -> None:
    spec = METHODS.get("edge-pruning")
    assert spec.func is edge_pruning and spec.stochastic
    assert "2406.16778" in spec.citation


def test_bad_options_are_clear_errors() -> None:
    assert PruningConfig.from_options({"steps": "20", "target": "0.9"}) == PruningConfig(steps=20, target=0.9)
    with pytest.raises(ValueError, match=r"unknown edge-pruning option\(s\) \['step'\]; valid: steps, lr"):
        PruningConfig.from_options({"step": 20})
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        PruningConfig.from_options({"steps": 0})
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        PruningConfig(warmup=1.5)
    with pytest.raises(ValueError, match="objective must be one of auto, kl, metric"):
        PruningConfig(objective="l2")


def test_target_ramps_linearly_then_holds() -> None:
    config = PruningConfig(steps=100, target=0.8, warmup=0.5)
    assert [config.target_at(s) for s in (0, 25, 50, 99)] == pytest.approx([0.0, 0.4, 0.8, 0.8])
    assert PruningConfig(steps=10, target=0.8, warmup=0.0).target_at(0) == 0.8
