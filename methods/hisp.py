"""HISP, the head importance score for pruning (Michel, Levy & Neubig 2019, "Are Sixteen
Heads Really Better than One?", NeurIPS, Sec. 4.1), as the ACDC paper's node baseline
(Conmy et al. 2023, Sec. 4; ArthurConmy/Automatic-Circuit-Discovery @bc99ace,
`experiments/launch_sixteen_heads.py`).

- Gate: each component u (head, MLP) writes ablated_u + g_u (out_u - ablated_u); the score
  uses d metric_x / d g_u at g = 1, i.e. (out_u - ablated_u) . d metric_x / d out_u, under
  the run's ablation (the runtime's `node_gradients`; Michel et al.'s gate multiplies the
  head, i.e. zero ablation). `input` is not gated: it is the prompt, not a component.
- Objective: the task metric per example (as EAP). Not KL to the full model: at g = 1 the
  KL is at its minimum, so its gradient is zero.
- Aggregation, `aggregate`: "mean-abs" (default) is I_u = mean_x |d metric_x / d g_u|,
  Michel et al.'s I_h and the ACDC code (per-example gradients' absolute values summed);
  "abs-mean" is |mean_x d metric_x / d g_u|, the gradient of the mean metric, where
  opposite effects on different examples cancel.
- Normalisation, `normalize`: "layer" (default) divides each layer's scores (its heads and
  its MLP) by their L2 norm, as Michel et al. (after Molchanov et al. 2017) and the ACDC
  code do; "none" keeps the raw scale, comparable across layers.
- Edges: `methods.node_scores.edges_from_nodes` (an edge scores its weaker end).
"""

from __future__ import annotations

import torch

from bench.discovery import DiscoveryRun, EdgeScores
from bench.graph import Graph
from methods.node_scores import edges_from_nodes
from methods.spec import register_method

AGGREGATES = ("mean-abs", "abs-mean")
NORMALIZATIONS = ("layer", "none")
DEFAULTS: dict[str, object] = {"aggregate": "mean-abs", "normalize": "layer"}


def parse_options(options: dict[str, object]) -> tuple[str, str]:
    """`(aggregate, normalize)` from the resolved options; a bad value is a one-line error."""
    for key, valid in (("aggregate", AGGREGATES), ("normalize", NORMALIZATIONS)):
        if options[key] not in valid:
            raise ValueError(f"unknown {key} {options[key]!r}; valid choices: {', '.join(valid)}")
    return str(options["aggregate"]), str(options["normalize"])


def layer_normalized(graph: Graph, scores: torch.Tensor) -> torch.Tensor:
    """`scores` (one per source) with each layer's heads and MLP divided by their L2 norm."""
    out = scores.clone()
    for layer, heads in enumerate(graph.layer_head_src):
        members = list(range(heads.start, heads.stop))
        if layer in graph.mlp_src:
            members.append(graph.mlp_src[layer])
        out[members] = scores[members] / scores[members].norm().clamp(min=1e-12)
    return out


@register_method(
    "hisp",
    description="head importance score: mean |gate gradient| per head and MLP, layer-normalised; edges from nodes",
    citation="Michel, Levy & Neubig 2019, Are Sixteen Heads Really Better than One?, NeurIPS, Sec. 4.1",
    defaults=DEFAULTS,
    check=parse_options,
)
def hisp(run: DiscoveryRun) -> EdgeScores:
    """Score nodes by HISP and edges by their weaker end (see the module docstring)."""
    aggregate, normalize = parse_options({**DEFAULTS, **run.options})
    grads = run.runtime.node_gradients(
        run.data.clean, run.data.metric, run.ablated, attention_mask=run.data.attention_mask
    ).double()
    scores = grads.abs().mean(0) if aggregate == "mean-abs" else grads.mean(0).abs()
    if normalize == "layer":
        scores = layer_normalized(run.graph, scores)
    return edges_from_nodes(run.graph, scores)
