"""Edge attribution patching (EAP): a first-order estimate of every edge's patching effect.

score(u->v) = (out_u(clean) - out_u(ablated)) . d metric / d input_v at the clean run,
for all edges from one clean forward, one ablated forward and one backward
(Syed, Rager & Conmy 2023, "Attribution Patching Outperforms Automated Circuit Discovery",
Sec. 3). This is exactly the gradient of the metric with respect to the edge mask at m = 1.
"""

from __future__ import annotations

from bench.discovery import DiscoveryRun, EdgeScores
from methods.spec import register_method


@register_method(
    "eap",
    description="edge attribution patching: (clean - ablated output) . gradient at the clean run",
    citation="Syed, Rager & Conmy 2023, arXiv 2310.10348",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
)
def eap(run: DiscoveryRun) -> EdgeScores:
    # The gradient forward is the clean run: it supplies the clean outputs of the deltas, so
    # the whole run is one ablated forward, one clean forward and one backward.
    scores = run.runtime.clean_edge_gradients(
        run.data.clean, run.objective, run.ablated, attention_mask=run.data.attention_mask
    )
    return EdgeScores(run.graph.to_edges(scores).float())
