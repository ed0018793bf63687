"""EAP with integrated gradients (Hanna, Pezzelle & Belinkov 2024, "Have Faith in
Faithfulness", Sec. 3): the EAP gradient averaged over points on a path from the ablated
run to the clean run, which fixes EAP's zero-gradient failures. Both variants compute
what the authors' library computes (hannamw/EAP-IG, `src/eap/attribute.py` at 795f560,
the code MIB runs), up to its sign (it scores ablated - clean) and its extra division by
the number of examples.

- `eap-ig-inputs`: the path interpolates the input embedding between the ablated and the
  clean run, x(a) = x_ablated + a (x_clean - x_ablated); every edge takes
  (out_u(clean) - out_u(ablated)) . sum_k w_k dL/d input_v at x(a_k). Option `points`
  chooses the m = `steps` points a_k and weights w_k:
  - `left` (default): a_k = k/m, k = 0..m-1, w_k = 1/m; the ablated end is included and
    the clean end is not, as the library since commit 13c0033 (2025-02-23). A Riemann
    sum: the error of the integral falls like 1/m (first order).
  - `right`: a_k = k/m, k = 1..m (the library before 13c0033); first order, 1/m.
  - `midpoint`: a_k = (k + 1/2)/m, k = 0..m-1; second order, 1/m^2.
  - `gauss-legendre`: the m Gauss-Legendre nodes and weights on [0, 1]; exact for an
    integrand that is a polynomial of degree < 2m, and for a smooth one the error falls
    faster than any power of 1/m.
- `eap-ig-activations`, the library's rule: each source group (the input, one layer's
  heads, one MLP) in turn writes the constant a_k clean + (1 - a_k) ablated output,
  a_k = k/m for k = 1..m (the library's points here: clean end included), while every
  other node runs on the clean input; no gradient flows back through the constant, so the
  edges into that group get nothing from its steps. Every edge adds
  (out_u(clean) - out_u(ablated)) . dL/d input_v at each of those groups x steps runs, and
  the sum is divided by groups x steps. (Under mean ablation the library interpolates
  towards zero, not the mean it ablates with, since it never records the mean as the
  group's ablated output; here the group moves towards the run's ablated output.)
- `eap-ig-activations-per-group`, CDBench's earlier rule: an edge is scored only from the
  interpolation of its own source's group, with gradients flowing through it; this is
  integrated gradients in edge-mask space along each group's edges, and it equals exact
  patching where the metric is multilinear in the mask, which the library's rule does not.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import register_method, whole_number

DEFAULT_STEPS = 5
STEPS_DEFAULTS = {"steps": DEFAULT_STEPS}
POINT_RULES = ("left", "right", "midpoint", "gauss-legendre")
INPUTS_DEFAULTS = {"steps": DEFAULT_STEPS, "points": "left"}


def steps_option(run: DiscoveryRun) -> int:
    return parse_steps(run.options)


def parse_steps(options: dict[str, object]) -> int:
    """The `steps` option as a positive integer; a clear error names a bad value."""
    value = options.get("steps", DEFAULT_STEPS)
    try:
        steps = whole_number(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {value!r}")
    return steps


def parse_input_options(options: dict[str, object]) -> tuple[int, str]:
    """`steps` and `points` of `eap-ig-inputs`; a clear error names a bad value."""
    rule = options.get("points", "left")
    if rule not in POINT_RULES:
        raise ValueError(f"unknown points {rule!r}; valid choices: {', '.join(POINT_RULES)}")
    return parse_steps(options), str(rule)


def path_points(rule: str, steps: int) -> tuple[list[float], list[float]]:
    """Positions a_k in [0, 1] (0 = ablated, 1 = clean) and weights w_k (summing to 1) of the
    quadrature `rule` with `steps` points; see the module docstring for each rule's order."""
    if rule == "left":
        return [k / steps for k in range(steps)], [1 / steps] * steps
    if rule == "right":
        return [k / steps for k in range(1, steps + 1)], [1 / steps] * steps
    if rule == "midpoint":
        return [(k + 0.5) / steps for k in range(steps)], [1 / steps] * steps
    if rule == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return [float(x + 1) / 2 for x in nodes], [float(w) / 2 for w in weights]
    raise ValueError(f"unknown points {rule!r}; valid choices: {', '.join(POINT_RULES)}")


@register_method(
    "eap-ig-inputs",
    description="EAP with integrated gradients along a straight path in input embeddings (m points)",
    citation="Hanna, Pezzelle & Belinkov 2024, arXiv 2403.17806",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
    defaults=INPUTS_DEFAULTS,
    check=parse_input_options,
)
def eap_ig_inputs(run: DiscoveryRun) -> EdgeScores:
    steps, rule = parse_input_options(run.options)
    clean_emb = run.runtime.input_embedding(run.data.clean, run.data.attention_mask)
    ablated_emb = run.ablated.outputs[:, :, 0]
    alphas, weights = path_points(rule, steps)
    points = [ablated_emb + a * (clean_emb - ablated_emb) for a in alphas]
    return path_average(run, points, weights)


def path_average(run: DiscoveryRun, points: list[torch.Tensor], weights: list[float] | None = None) -> EdgeScores:
    """(out_u(clean) - out_u(ablated)) . sum over input-embedding `points` of w dL/d input_v,
    with weights w (default: the plain mean)."""
    runtime, clean = run.runtime, run.data.clean
    deltas = runtime.deltas(clean, run.ablated)
    padding = run.data.attention_mask
    weights = weights if weights is not None else [1 / len(points)] * len(points)
    total = sum(
        w * runtime.edge_gradients(clean, run.objective, deltas, embedding=point, attention_mask=padding)
        for point, w in zip(points, weights, strict=True)
    )
    return EdgeScores(run.graph.to_edges(total).float())


@register_method(
    "eap-ig-activations",
    description="EAP-IG over activations as the EAP-IG library: each group frozen at m points in turn, "
    "every edge scored at each",
    citation="Hanna, Pezzelle & Belinkov 2024, arXiv 2403.17806",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
    defaults=STEPS_DEFAULTS,
    check=parse_steps,
)
def eap_ig_activations(run: DiscoveryRun) -> EdgeScores:
    graph, steps = run.graph, steps_option(run)
    deltas = run.runtime.deltas(run.data.clean, run.ablated)
    total = sum(frozen_group_scores(run, group, steps, deltas) for group in graph.source_groups)
    return EdgeScores(graph.to_edges(total / (len(graph.source_groups) * steps)).float())


def frozen_group_scores(run: DiscoveryRun, group: slice, steps: int, deltas: torch.Tensor) -> torch.Tensor:
    """One group's part of the library's rule, `[n_sources, n_destinations]`: the sum over
    k = 1..m of deltas_u . dL/d input_v for every edge, with `group` writing the constant
    (k/m) clean + (1 - k/m) ablated output and everything else running clean."""
    runtime, clean, padding = run.runtime, run.data.clean, run.data.attention_mask
    return sum(
        runtime.edge_gradients(
            clean, run.objective, deltas, scaled_sources=(group, k / steps), freeze_scaled=True, attention_mask=padding
        )
        for k in range(1, steps + 1)
    )


@register_method(
    "eap-ig-activations-per-group",
    description="EAP-IG over activations, each group's edges scored only from that group's own "
    "interpolation (m steps per group)",
    citation="Hanna, Pezzelle & Belinkov 2024, arXiv 2403.17806 (CDBench's variant)",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
    defaults=STEPS_DEFAULTS,
    check=parse_steps,
)
def eap_ig_activations_per_group(run: DiscoveryRun) -> EdgeScores:
    graph = run.graph
    steps = steps_option(run)
    deltas = run.runtime.deltas(run.data.clean, run.ablated)
    total = torch.zeros(graph.n_sources, graph.n_destinations)
    for group in graph.source_groups:
        total[group] = group_scores(run, group, steps, deltas)
    return EdgeScores(graph.to_edges(total))


def group_scores(run: DiscoveryRun, group: slice, steps: int, deltas: torch.Tensor | None = None) -> torch.Tensor:
    """Averaged mask gradients `[n_group, n_destinations]` of the edges out of `group`, with
    the group's outputs at (k/m) clean + (1 - k/m) ablated, k = 1..m, and every other edge
    kept."""
    runtime, clean = run.runtime, run.data.clean
    deltas = runtime.deltas(clean, run.ablated) if deltas is None else deltas
    padding = run.data.attention_mask
    total = sum(
        runtime.edge_gradients(clean, run.objective, deltas, scaled_sources=scaled, attention_mask=padding)[group]
        for scaled in [(group, k / steps) for k in range(1, steps + 1)]
    )
    return (total / steps).float()
