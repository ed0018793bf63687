"""EAP with integrated gradients (Hanna, Pezzelle & Belinkov 2024, "Have Faith in
Faithfulness", Sec. 3): the EAP gradient averaged over points on a straight path from the
ablated run to the clean run, which fixes EAP's zero-gradient failures.

- `eap-ig-inputs`: the path interpolates the input embedding,
  x_k = x_ablated + (k/m)(x_clean - x_ablated), k = 1..m (a right Riemann sum, as in the
  EAP-IG code); every edge takes (out_u(clean) - out_u(ablated)) . mean_k dL/d input_v.
- `eap-ig-activations`: each source group (the input, one layer's heads, one MLP) in turn
  writes (k/m) clean + (1 - k/m) ablated output while everything else runs clean; the
  edges out of that group take the averaged mask gradient. No path visits two members of
  a group, so this is integrated gradients in edge-mask space along those edges.

m = `steps` (paper default 5).
"""

from __future__ import annotations

import torch

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import register_method, whole_number

DEFAULT_STEPS = 5
STEPS_DEFAULTS = {"steps": DEFAULT_STEPS}


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


@register_method(
    "eap-ig-inputs",
    description="EAP with integrated gradients along a straight path in input embeddings (m steps)",
    citation="Hanna, Pezzelle & Belinkov 2024, arXiv 2403.17806",
    defaults=STEPS_DEFAULTS,
    check=parse_steps,
)
def eap_ig_inputs(run: DiscoveryRun) -> EdgeScores:
    steps = steps_option(run)
    clean_emb = run.runtime.input_embedding(run.data.clean, run.data.attention_mask)
    ablated_emb = run.ablated.outputs[:, :, 0]
    points = [ablated_emb + (k / steps) * (clean_emb - ablated_emb) for k in range(1, steps + 1)]
    return path_average(run, points)


def path_average(run: DiscoveryRun, points: list[torch.Tensor]) -> EdgeScores:
    """(out_u(clean) - out_u(ablated)) . mean over input-embedding `points` of dL/d input_v."""
    runtime, clean = run.runtime, run.data.clean
    deltas = runtime.deltas(clean, run.ablated)
    padding = run.data.attention_mask
    total = sum(
        runtime.edge_gradients(clean, run.objective, deltas, embedding=point, attention_mask=padding)
        for point in points
    )
    return EdgeScores(run.graph.to_edges(total / len(points)).float())


@register_method(
    "eap-ig-activations",
    description="EAP with integrated gradients over each layer's activations (m steps per group)",
    citation="Hanna, Pezzelle & Belinkov 2024, arXiv 2403.17806",
    defaults=STEPS_DEFAULTS,
    check=parse_steps,
)
def eap_ig_activations(run: DiscoveryRun) -> EdgeScores:
    graph = run.graph
    steps = steps_option(run)
    deltas = run.runtime.deltas(run.data.clean, run.ablated)
    total = torch.zeros(graph.n_sources, graph.n_destinations)
    for group in graph.source_groups:
        total[group] = group_scores(run, group, steps, deltas)
    return EdgeScores(graph.to_edges(total))


def group_scores(run: DiscoveryRun, group: slice, steps: int, deltas: torch.Tensor | None = None) -> torch.Tensor:
    """Averaged mask gradients `[n_group, n_destinations]` of the edges out of `group`, with
    the group's outputs at (k/m) clean + (1 - k/m) ablated and every other edge kept."""
    runtime, clean = run.runtime, run.data.clean
    deltas = runtime.deltas(clean, run.ablated) if deltas is None else deltas
    padding = run.data.attention_mask
    total = sum(
        runtime.edge_gradients(clean, run.objective, deltas, scaled_sources=scaled, attention_mask=padding)[group]
        for scaled in [(group, k / steps) for k in range(1, steps + 1)]
    )
    return (total / steps).float()
