"""The floor every method must beat: seeded random edge scores."""

from __future__ import annotations

import torch

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import register_method


@register_method(
    "random",
    description="seeded standard-normal score per edge (chance-level baseline)",
    citation="baseline",
    stochastic=True,
)
def random_scores(run: DiscoveryRun) -> EdgeScores:
    gen = torch.Generator().manual_seed(run.seed)
    return EdgeScores(torch.randn(run.graph.n_edges, generator=gen, dtype=torch.float64).float())
