"""Exact activation patching: the true effect of removing each edge alone.

score(e) = metric(full model) - metric(model with only e ablated), one masked forward per
edge, many edges stacked in one batched forward. This is the quantity the gradient
methods (EAP, EAP-IG, EAP-GP) approximate to first order.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import register_method


def masks_per_forward(run: DiscoveryRun) -> int:
    tokens_per_mask = run.data.clean.numel()
    return max(1, run.max_batch_tokens // tokens_per_mask)


@register_method(
    "exact-patching",
    description="metric drop when each edge alone is ablated (one masked forward per edge, batched)",
    citation="activation patching (Vig et al. 2020; Meng et al. 2022); edge form as in Hanna et al. 2024",
)
@torch.no_grad()
def exact_patching(run: DiscoveryRun) -> EdgeScores:
    graph, runtime = run.graph, run.runtime
    full = run.objective(runtime.forward(run.data.clean, graph.mask(), run.ablated))
    scores = torch.empty(graph.n_edges)
    chunk = masks_per_forward(run)
    edges = torch.arange(graph.n_edges)
    for start in tqdm(range(0, graph.n_edges, chunk), desc="exact patching", unit="chunk", leave=False):
        ids = edges[start : start + chunk]
        masks = graph.mask().expand(len(ids), -1, -1).clone()
        masks[torch.arange(len(ids)), graph.edge_src[ids], graph.edge_dst[ids]] = 0.0
        without = run.objective(runtime.forward(run.data.clean, masks, run.ablated))
        scores[ids] = (full - without).float()
    return EdgeScores(scores)
