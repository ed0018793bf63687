"""Method registry: each adapter module registers one `MethodSpec` by name."""

from __future__ import annotations

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import METHODS, MethodSpec, register_method

# Importing an adapter module registers it.
from methods import acdc, eap, eap_gp, eap_ig, edge_pruning, exact_patching, hisp, random_baseline  # noqa: F401  isort: skip
from methods import subnetwork_probing  # noqa: F401  isort: skip
from methods import file_import  # noqa: F401  isort: skip


def score_edges(name: str, run: DiscoveryRun) -> EdgeScores:
    """Run the method called `name` on `run`."""
    return METHODS.get(name).func(run)


__all__ = ["METHODS", "MethodSpec", "register_method", "score_edges"]
