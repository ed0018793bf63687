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
    return run.masks_per_forward()


@torch.no_grad()
def patch_effects(run: DiscoveryRun, edge_ids: torch.Tensor, progress: bool = False) -> torch.Tensor:
    """metric(full) - metric(without edge e) for each edge position in `edge_ids`."""
    graph, runtime = run.graph, run.runtime
    full = run.objective(runtime.forward(run.data.clean, graph.mask(), run.ablated))
    effects = torch.empty(len(edge_ids))
    chunk = masks_per_forward(run)
    starts = range(0, len(edge_ids), chunk)
    for start in tqdm(starts, desc="exact patching", unit="chunk", leave=False, disable=not progress):
        ids = edge_ids[start : start + chunk]
        without = run.objective(runtime.forward(run.data.clean, graph.masks_without(ids), run.ablated))
        effects[start : start + len(ids)] = (full - without).float()
    return effects


@register_method(
    "exact-patching",
    description="metric drop when each edge alone is ablated (one masked forward per edge, batched)",
    citation="activation patching (Vig et al. 2020; Meng et al. 2022); edge form as in Hanna et al. 2024",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
)
def exact_patching(run: DiscoveryRun) -> EdgeScores:
    return EdgeScores(patch_effects(run, torch.arange(run.graph.n_edges), progress=True))
