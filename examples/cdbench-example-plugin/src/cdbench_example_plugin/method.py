"""A gradient-free method: an edge matters as much as its source changes between runs."""

from __future__ import annotations

from bench.api import DiscoveryRun, EdgeScores


def delta_norm(run: DiscoveryRun) -> EdgeScores:
    """L2 norm of the edge source's output difference, clean vs ablated (one forward each)."""
    deltas = run.runtime.deltas(run.data.clean, run.ablated)  # [n_sources, batch * pos * d_model]
    per_source = deltas.float().norm(dim=-1)
    return EdgeScores(per_source[run.graph.edge_src].clone())
