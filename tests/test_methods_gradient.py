"""EAP, EAP-IG and EAP-GP against exact patching and independently computed integrals
(the EAP-IG library's own rules: `tests/test_reference_rules.py`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, prepare_run
from bench.runtime import MaskedRuntime
from methods import score_edges
from methods.eap_gp import grad_path, grad_path_scores
from methods.eap_ig import group_scores, path_average
from tasks.base import TaskData
from tests.conftest import tiny_model

# The methods that equal exact patching where the metric is multilinear in the mask.
GRADIENT_METHODS = ["eap", "eap-ig-inputs", "eap-ig-activations-per-group", "eap-gp"]


def logit_diff(logits: torch.Tensor) -> torch.Tensor:
    return logits[..., -1, 3] - logits[..., -1, 7]


def mask_multilinear_model() -> HookedTransformer:
    """No normalisation, identity MLP activation and zero queries (uniform causal attention):
    the output is linear in the input embedding and multilinear in the edge mask, so
    removing one edge changes the metric by exactly its mask derivative."""
    model = tiny_model("no-norm", dtype=torch.float64)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_Q.zero_()
            block.attn.b_Q.zero_()
            block.mlp.act_fn = lambda x: x
    return model


def make_run(model: HookedTransformer, ablation: str = "corrupted", steps: int | None = None) -> DiscoveryRun:
    gen = torch.Generator().manual_seed(11)
    clean = torch.randint(0, 50, (4, 6), generator=gen)
    corrupt = torch.randint(0, 50, (4, 6), generator=gen)
    data = TaskData(clean, corrupt, logit_diff, "logit diff")
    options = {} if steps is None else {"steps": steps}
    return prepare_run(MaskedRuntime(model), data, ablation, options=options)


@pytest.mark.parametrize("ablation", ["corrupted", "zero", "mean"])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_equals_exact_patching_when_mask_effects_are_exactly_first_order(method: str, ablation: str) -> None:
    run = make_run(mask_multilinear_model(), ablation)
    exact = score_edges("exact-patching", run).values.double()
    got = score_edges(method, run).values.double()
    assert exact.abs().max() > 1e-2, "the comparison must not be trivial"
    assert (got - exact).abs().max() < 1e-5


def test_the_librarys_activation_rule_is_not_exact_patching_even_when_mask_effects_are_first_order() -> None:
    """It freezes each interpolated group, so the paths through that group are missing from
    its steps' gradients (`tests/test_reference_rules.py` checks the rule itself)."""
    run = make_run(mask_multilinear_model())
    exact = score_edges("exact-patching", run).values.double()
    got = score_edges("eap-ig-activations", run).values.double()
    assert (got - exact).abs().max() > 1e-2 * exact.abs().max()


def test_eap_equals_autograd_mask_gradient_on_a_nonlinear_model() -> None:
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    mask = run.graph.mask().double().requires_grad_(True)
    run.objective(run.runtime.forward(run.data.clean, mask, run.ablated)).backward()
    eap = score_edges("eap", run).values.double()
    assert (eap - run.graph.to_edges(mask.grad)).abs().max() < 1e-6
    exact = score_edges("exact-patching", run).values.double()
    assert (eap - exact).abs().max() > 1e-4, "on a nonlinear model EAP is only an approximation"


def test_eap_ig_activations_per_group_converges_to_finite_sums_of_masked_forwards() -> None:
    model = tiny_model("ln-gelu", dtype=torch.float64)
    run = make_run(model, steps=200)
    got = score_edges("eap-ig-activations-per-group", run).values.double()
    graph, eps = run.graph, 1e-5
    points, weights = np.polynomial.legendre.leggauss(12)
    group_of = {s: g for g in graph.source_groups for s in range(g.start, g.stop)}
    for edge in ["input->a1.h2<k>", "a0.h1->m0", "a1.h3->a2.h0<q>", "m1->logits", "a2.h2->logits"]:
        i = graph.edge_index(edge)
        src, dst = int(graph.edge_src[i]), int(graph.edge_dst[i])
        integral = 0.0
        for point, weight in zip(points, weights, strict=True):
            mask = graph.mask().double()
            mask[group_of[src]] *= (point + 1) / 2
            up, down = mask.clone(), mask.clone()
            up[src, dst] += eps
            down[src, dst] -= eps
            with torch.no_grad():
                f_up = run.objective(run.runtime.forward(run.data.clean, up, run.ablated))
                f_down = run.objective(run.runtime.forward(run.data.clean, down, run.ablated))
            integral += weight / 2 * ((f_up - f_down) / (2 * eps)).item()
        assert abs(got[i].item() - integral) < 5e-3 * max(1.0, abs(integral)), edge


def test_eap_gp_reduces_to_eap_where_gradients_do_not_change_along_paths() -> None:
    run = make_run(mask_multilinear_model())
    assert (score_edges("eap-gp", run).values - score_edges("eap", run).values).abs().max() < 1e-6


def test_grad_path_takes_unit_steps_down_the_output_distance_from_the_clean_input() -> None:
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    model, runtime, clean = run.runtime.model, run.runtime, run.data.clean
    start = runtime.input_embedding(clean)
    target = model(run.data.corrupted).detach()
    path = grad_path(runtime, clean, start, target, steps=3)
    assert len(path) == 3
    previous = start
    for point in path:
        step_norms = (point - previous).flatten(1).norm(dim=1)
        assert torch.allclose(step_norms, torch.ones_like(step_norms), atol=1e-9)
        previous = point
    # independent first step: plain hooks and autograd on the squared output distance
    x = start.clone().requires_grad_(True)
    logits = model.run_with_hooks(clean, fwd_hooks=[("blocks.0.hook_resid_pre", lambda r, hook: x.expand_as(r))])
    ((logits - target) ** 2).sum().backward()
    direction = -x.grad / x.grad.flatten(1).norm(dim=1)[:, None, None]
    assert torch.allclose(path[0] - start, direction, atol=1e-8)


@pytest.mark.parametrize("shape", ["ln-gelu", "attn-only-shortformer", "parallel-rotary"])
@pytest.mark.parametrize("ablation", ["corrupted", "zero"])
def test_eap_ig_activations_per_group_hook_equals_the_masked_forwards_mask_gradient(shape: str, ablation: str) -> None:
    """Each group is interpolated by one hook on its residual-stream write; the masked
    runtime with that group's edges at k/m (all others 1) and autograd on the mask must
    give the same averaged gradients, for the input, a layer's heads and an MLP."""
    run = make_run(tiny_model(shape, dtype=torch.float64), ablation)
    graph, steps = run.graph, 3
    for group in graph.source_groups:
        expected = torch.zeros(group.stop - group.start, graph.n_destinations, dtype=torch.float64)
        for k in range(1, steps + 1):
            mask = graph.mask().double()
            mask[group] *= k / steps
            mask.requires_grad_(True)
            run.objective(run.runtime.forward(run.data.clean, mask, run.ablated)).backward()
            expected += mask.grad[group] / steps
        got = group_scores(run, group, steps)
        assert expected.abs().max() > 1e-4, group
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def test_eap_gp_sharing_each_points_forward_equals_the_path_then_the_attribution() -> None:
    """The method steps and attributes from one forward per point; done separately (the
    path first, then EAP-IG's path average over it) the scores must be the same."""
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64))
    runtime, clean = run.runtime, run.data.clean
    with torch.no_grad():
        target = runtime.forward_from_embedding(clean, run.ablated.outputs[:, :, 0].expand(*clean.shape, -1))
    fused = run.graph.to_edges(grad_path_scores(run, target, steps=4))
    path = grad_path(runtime, clean, runtime.input_embedding(clean), target, steps=4)
    separate = path_average(run, path).values
    assert fused.abs().max() > 1e-3
    assert torch.allclose(fused, separate.to(fused.dtype), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", [*GRADIENT_METHODS, "eap-ig-activations", "exact-patching", "random"])
def test_same_seed_gives_bit_identical_scores(method: str) -> None:
    first = score_edges(method, make_run(tiny_model(), steps=3)).values
    second = score_edges(method, make_run(tiny_model(), steps=3)).values
    assert torch.equal(first, second)


def test_bad_steps_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        score_edges("eap-ig-inputs", make_run(tiny_model(), steps=0))
