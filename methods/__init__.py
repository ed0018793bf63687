"""Method registry: each adapter module registers one `MethodSpec` by name.

The built-in adapters (and installed or `--plugin` ones, see `bench.plugins`) are imported on the
registry's first use, so importing `methods` or `methods.spec` stays cheap.
"""

from __future__ import annotations

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import METHODS, MethodSpec, register_method

# Modules under methods/ whose import registers a built-in method.
BUILTIN_MODULES = (
    "acdc",
    "eap",
    "eap_gp",
    "eap_ig",
    "edge_pruning",
    "exact_patching",
    "hisp",
    "random_baseline",
    "subnetwork_probing",
    "file_import",  # `--method file:PATH`: scores from an MIB / EAP-IG importance file
)


def score_edges(name: str, run: DiscoveryRun) -> EdgeScores:
    """Run the method called `name` on `run`."""
    return METHODS.get(name).func(run)


__all__ = ["BUILTIN_MODULES", "METHODS", "MethodSpec", "register_method", "score_edges"]
