"""The EAP-IG library's rules (hannamw/EAP-IG at 795f560), each against an independent
computation written with plain TransformerLens hooks and autograd
(never the masked runtime), on a LayerNorm + GELU model with random weights, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import DiscoveryRun, prepare_run
from bench.runtime import MaskedRuntime
from methods import score_edges
from methods.eap_ig import POINT_RULES, frozen_group_scores, path_points
from tasks.base import TaskData
from tests.conftest import tiny_model

# Both sides compute the same sum in float64; the methods return float32 scores.
REL_TOL = 1e-6


def logit_diff(logits: torch.Tensor) -> torch.Tensor:
    return logits[..., -1, 3] - logits[..., -1, 7]


def make_run(model: HookedTransformer, ablation: str = "corrupted", **options: object) -> DiscoveryRun:
    gen = torch.Generator().manual_seed(5)
    clean = torch.randint(0, 50, (3, 6), generator=gen)
    corrupt = torch.randint(0, 50, (3, 6), generator=gen)
    data = TaskData(clean, corrupt, logit_diff, "logit diff")
    return prepare_run(MaskedRuntime(model), data, ablation, options=options)


# --- an independent implementation: hooks on the model's own activations ----------------------------


class HookRule:
    """Source outputs, ablated values and destination gradients read straight off the model's
    hook points: the input as `hook_embed` + `hook_pos_embed`, each head's output from its
    `hook_z` and `W_O`, each MLP's `hook_mlp_out`; a destination's gradient is that of a zero
    perturbation added at its hook (`hook_{q,k,v}_input`, `hook_mlp_in`, the last
    `hook_resid_post` for `logits`)."""

    def __init__(self, model: HookedTransformer, clean: torch.Tensor, corrupt: torch.Tensor, ablation: str) -> None:
        self.model, self.clean, self.ablation = model, clean, ablation
        self.n_layers, self.n_heads = model.cfg.n_layers, model.cfg.n_heads
        outs = ["hook_embed", "hook_pos_embed"]
        outs += [f"blocks.{layer}.{name}" for layer in range(self.n_layers) for name in ("attn.hook_z", "hook_mlp_out")]
        with torch.no_grad():
            _, self.clean_cache = model.run_with_cache(clean, names_filter=lambda n: n in outs)
            _, corrupt_cache = model.run_with_cache(corrupt, names_filter=lambda n: n in outs)
        self.ablated = {name: self._ablated(name, self.clean_cache[name], corrupt_cache[name]) for name in outs}

    def _ablated(self, name: str, clean: torch.Tensor, corrupt: torch.Tensor) -> torch.Tensor:
        if self.ablation == "corrupted":
            return corrupt
        if self.ablation == "mean":  # the corrupted inputs are the reference set
            return corrupt.mean(0, keepdim=True).expand_as(clean)
        if self.ablation == "zero-token" and name == "hook_pos_embed":
            return clean  # the library never ablates the positional embedding
        return torch.zeros_like(clean)

    def deltas(self) -> dict[str, torch.Tensor]:
        """Clean minus ablated output per source node, `[batch, pos, d_model]` each."""
        c, a = self.clean_cache, self.ablated
        out = {"input": c["hook_embed"] + c["hook_pos_embed"] - a["hook_embed"] - a["hook_pos_embed"]}
        for layer in range(self.n_layers):
            z = c[f"blocks.{layer}.attn.hook_z"] - a[f"blocks.{layer}.attn.hook_z"]
            w_o = self.model.blocks[layer].attn.W_O
            for head in range(self.n_heads):
                out[f"a{layer}.h{head}"] = z[:, :, head] @ w_o[head]
            out[f"m{layer}"] = c[f"blocks.{layer}.hook_mlp_out"] - a[f"blocks.{layer}.hook_mlp_out"]
        return out

    def upstream(self, dst: str) -> list[str]:
        """The source nodes a destination reads: earlier layers' heads and MLPs, and for an
        MLP its own layer's heads."""
        if dst == "logits":
            layer, own_heads = self.n_layers, False
        else:
            layer, own_heads = int(dst[1:].split(".")[0]), dst.startswith("m")
        nodes = ["input"]
        for earlier in range(layer + 1):
            if earlier < layer or own_heads:
                nodes += [f"a{earlier}.h{h}" for h in range(self.n_heads)]
            if earlier < layer:
                nodes.append(f"m{earlier}")
        return nodes

    def gradients(self, replace: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """d mean(logit diff) / d each destination input, with the hook points in `replace`
        returning those constants."""
        model, clean, n_layers = self.model, self.clean, self.n_layers
        probes: dict[str, torch.Tensor] = {}

        def probe(key: str):
            def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
                probes[key] = torch.zeros_like(x, requires_grad=True)
                return x + probes[key]

            return hook

        hooks = [(name, lambda x, hook, value=value: value) for name, value in replace]
        for layer in range(n_layers):
            hooks += [(f"blocks.{layer}.hook_{x}_input", probe(f"{layer}{x}")) for x in "qkv"]
            hooks.append((f"blocks.{layer}.hook_mlp_in", probe(f"m{layer}")))
        hooks.append((f"blocks.{n_layers - 1}.hook_resid_post", probe("logits")))
        objective = logit_diff(model.run_with_hooks(clean, fwd_hooks=hooks)).mean()
        keys = list(probes)
        grads = torch.autograd.grad(objective, [probes[k] for k in keys], allow_unused=True)
        got = {k: torch.zeros_like(probes[k]) if g is None else g for k, g in zip(keys, grads, strict=True)}
        out = {"logits": got["logits"]}
        for layer in range(n_layers):
            out[f"m{layer}"] = got[f"m{layer}"]
            for head in range(self.n_heads):
                for x in "qkv":
                    out[f"a{layer}.h{head}<{x}>"] = got[f"{layer}{x}"][:, :, head]
        return out

    def edge_scores(self, gradients: dict[str, torch.Tensor]) -> dict[str, float]:
        deltas = self.deltas()
        return {
            f"{u}->{v}": float((deltas[u] * grad).sum())
            for v, grad in gradients.items()
            for u in self.upstream(v.split("<")[0] if v.startswith("a") else v)
        }

    def groups(self) -> list[list[str]]:
        """Hook points of each source group, as the library's node list: input, then per
        layer the heads and the MLP."""
        groups = [["hook_embed", "hook_pos_embed"]]
        for layer in range(self.n_layers):
            groups += [[f"blocks.{layer}.attn.hook_z"], [f"blocks.{layer}.hook_mlp_out"]]
        return groups


def as_vector(run: DiscoveryRun, scores: dict[str, float]) -> torch.Tensor:
    assert set(scores) == set(run.graph.edge_names)
    return torch.tensor([scores[name] for name in run.graph.edge_names], dtype=torch.float64)


def library_activation_rule(run: DiscoveryRun, steps: int) -> torch.Tensor:
    """For each group and k = 1..m, its hook points return the constant
    (k/m) clean + (1 - k/m) ablated; every edge adds delta_u . grad_v; divide by groups x m."""
    rule = HookRule(run.runtime.model, run.data.clean, run.data.corrupted, run.ablation)
    total = dict.fromkeys(run.graph.edge_names, 0.0)
    for group in rule.groups():
        for k in range(1, steps + 1):
            a = k / steps
            constants = [(n, a * rule.clean_cache[n] + (1 - a) * rule.ablated[n]) for n in group]
            for edge, score in rule.edge_scores(rule.gradients(constants)).items():
                total[edge] += score
    return as_vector(run, total) / (len(rule.groups()) * steps)


def input_quadrature(run: DiscoveryRun, alphas: list[float], weights: list[float]) -> torch.Tensor:
    """delta_u . sum_k w_k grad_v with the token and positional embeddings at
    ablated + a_k (clean - ablated)."""
    rule = HookRule(run.runtime.model, run.data.clean, run.data.corrupted, run.ablation)
    total = dict.fromkeys(run.graph.edge_names, 0.0)
    for a, w in zip(alphas, weights, strict=True):
        names = ["hook_embed", "hook_pos_embed"]
        constants = [(n, rule.ablated[n] + a * (rule.clean_cache[n] - rule.ablated[n])) for n in names]
        for edge, score in rule.edge_scores(rule.gradients(constants)).items():
            total[edge] += w * score
    return as_vector(run, total)


def assert_matches(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().item()
    assert scale > 1e-3, "the comparison must not be trivial"
    assert (got.double() - expected).abs().max().item() < REL_TOL * scale


# --- eap-ig-activations: the library's rule ---------------------------------------------------------


@pytest.mark.parametrize("ablation", ["corrupted", "mean", "zero", "zero-token"])
def test_eap_ig_activations_is_the_librarys_rule(ablation: str) -> None:
    """Under mean ablation the group moves towards the mean (the library's moves towards 0)."""
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64), ablation, steps=3)
    assert_matches(score_edges("eap-ig-activations", run).values, library_activation_rule(run, 3))


def test_a_frozen_group_adds_nothing_to_its_own_inputs_and_something_everywhere_else() -> None:
    """No gradient flows back through a frozen group, so its steps score the edges into it
    0; unlike the per-group rule, they score the edges out of every other group too."""
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64), steps=2)
    deltas = run.runtime.deltas(run.data.clean, run.ablated)
    last_heads = run.graph.layer_head_src[-1]
    part = frozen_group_scores(run, last_heads, 2, deltas)
    into_last_heads = run.graph.layer_head_dst[-1]
    assert part[:, into_last_heads].abs().max() == 0
    outside = torch.ones(run.graph.n_sources, dtype=torch.bool)
    outside[last_heads] = False
    assert part[outside][:, run.graph.logits_dst].abs().min() > 0


# --- eap-ig-inputs: the library's points, and the other rules' orders ------------------------------


def test_eap_ig_inputs_default_is_the_librarys_left_riemann_sum() -> None:
    steps = 3
    run = make_run(tiny_model("ln-gelu", dtype=torch.float64), steps=steps)
    expected = input_quadrature(run, [k / steps for k in range(steps)], [1 / steps] * steps)  # k = 0..m-1
    assert_matches(score_edges("eap-ig-inputs", run).values, expected)


@pytest.mark.parametrize(
    ("rule", "alphas"),
    [
        ("left", [0, 1 / 4, 2 / 4, 3 / 4]),
        ("right", [1 / 4, 2 / 4, 3 / 4, 1]),
        ("midpoint", [1 / 8, 3 / 8, 5 / 8, 7 / 8]),
        # Gauss-Legendre with 4 nodes on [0, 1]: (1 -+ sqrt(3/7 -+ 2/7 sqrt(6/5))) / 2
        (
            "gauss-legendre",
            sorted((1 + s * np.sqrt(3 / 7 + t * 2 / 7 * np.sqrt(6 / 5))) / 2 for s in (-1, 1) for t in (-1, 1)),
        ),
    ],
)
def test_point_rules_are_the_stated_points(rule: str, alphas: list[float]) -> None:
    got, weights = path_points(rule, 4)
    np.testing.assert_allclose(sorted(got), alphas, atol=1e-14)
    assert abs(sum(weights) - 1) < 1e-14
    # a quadrature with m points integrates t^(degree) exactly up to its degree of exactness
    exact_degree = {"left": 0, "right": 0, "midpoint": 1, "gauss-legendre": 7}[rule]
    for degree in range(exact_degree + 1):
        assert abs(sum(w * a**degree for a, w in zip(got, weights, strict=True)) - 1 / (degree + 1)) < 1e-14
    assert (
        abs(sum(w * a ** (exact_degree + 1) for a, w in zip(got, weights, strict=True)) - 1 / (exact_degree + 2)) > 1e-6
    )


def test_point_rules_converge_at_their_stated_order() -> None:
    """Against a 24-node Gauss-Legendre path integral through plain hooks (within 1.2e-10
    of 48 nodes): left and right sums lose a factor ~8 of error for 8x the points (first
    order), the midpoint rule ~64 (second order; 52 from 4 to 32 points here), and
    Gauss-Legendre reaches float32 rounding at 16 points (4: 5e-3, 8: 4e-4, 16: 1e-7)."""
    model = tiny_model("ln-gelu", dtype=torch.float64)
    reference_run = make_run(model)
    reference = input_quadrature(reference_run, *path_points("gauss-legendre", 24))
    scale = reference.abs().max().item()

    def error(rule: str, steps: int) -> float:
        got = score_edges("eap-ig-inputs", make_run(model, steps=steps, points=rule)).values.double()
        return (got - reference).abs().max().item() / scale

    for rule in ("left", "right"):
        assert 6 < error(rule, 4) / error(rule, 32) < 12, rule
    assert 40 < error("midpoint", 4) / error("midpoint", 32) < 90
    assert error("gauss-legendre", 16) < 1e-6  # the scores are float32
    assert error("midpoint", 32) > 1e-4  # the others are far from rounding level


def test_bad_points_option_names_the_choices() -> None:
    run = make_run(tiny_model(), points="trapezoid")
    with pytest.raises(ValueError, match=f"unknown points 'trapezoid'; valid choices: {', '.join(POINT_RULES)}"):
        score_edges("eap-ig-inputs", run)
