"""From node scores to an edge ranking, for methods that score components (subnetwork
probing, HISP): the rule that makes each prefix of the ranking a node circuit.

An edge u->v scores min(score(u), score(node of v)), where `input` and `logits` are never
masked and score the largest component score. So the edges scoring >= t are exactly the
edges among the nodes scoring >= t: every threshold gives the circuit those nodes induce
(as ACDC's subnetwork-probing code removes both in- and out-edges of a masked node), and a
node's largest incident edge score (scoring's node-level view) is its own score. Ties (the
edges whose weaker end is the same node) keep graph order, as every ranking does.
"""

from __future__ import annotations

import torch

from bench.discovery import EdgeScores
from bench.graph import Graph


def edges_from_nodes(graph: Graph, node_values: torch.Tensor) -> EdgeScores:
    """Edge scores from one nonnegative score per source in `graph.sources` order (the
    `input` entry is ignored: it is never masked).

    Returns:
        `EdgeScores` in float64 with `node_scores` holding every component's score.
    """
    if node_values.shape != (graph.n_sources,):
        raise ValueError(f"need one score per source ({graph.n_sources}), got shape {tuple(node_values.shape)}")
    sources = node_values.detach().double().clone()
    sources[0] = sources[1:].max() if graph.n_sources > 1 else 1.0
    top = sources[0]
    dst_owner = [graph.src_index.get(graph.destination_node(d)) for d in graph.destinations]
    destinations = torch.stack([top if owner is None else sources[owner] for owner in dst_owner])
    values = torch.minimum(sources[graph.edge_src], destinations[graph.edge_dst])
    named = dict(zip(graph.sources[1:], node_values[1:].double().tolist(), strict=True))
    return EdgeScores(values, node_scores=named)
