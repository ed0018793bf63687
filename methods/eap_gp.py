"""EAP with GradPath (Zhang et al. 2025, "EAP-GP: Mitigating Saturation Effect in
Gradient-based Automated Circuit Identification", arXiv 2502.06852, Sec. 4 and Algorithm 1).

EAP-IG averages gradients on a straight line, which can run through regions where the
metric is saturated and gradients vanish. GradPath instead starts at the clean input and
walks, in unit-length steps, down the gradient of the distance between the model's output
and the ablated run's output:

    g_j = grad_x || G(x_{j-1}) - G(x_ablated) ||^2,   x_j = x_{j-1} - g_j / ||g_j||,   x_0 = x_clean

and scores every edge as (out_u(clean) - out_u(ablated)) . (1/k) sum_{j=1..k} dL(x_j)/d input_v.

The paper's text was not reachable from here (only its abstract; its reproducibility page
names "Algorithm 1 Edge Attribution Patching with Grad Path (EAP-GP) for edge (u, v)" and
says no code is released). This follows the two public readings, which agree with each
other and with the abstract ("starting from the input and adaptively following the
direction of the difference between the gradients of corrupted and clean inputs"):
`Brokttv/EAP-GP` (built on EAP-IG; it cites Algorithm 1 and Eqs. 7-9, Eq. 8 being the path
and Eq. 9 the attribution) and `Lexsi-Labs/CircuitKIT` (`get_scores_eap_gp`, citing Eq. 8).
Both start at the clean input, take k unit-norm steps with no step size, and average the
k points after the start. Choices where they are open or differ, made here:
- the path lives in the input embedding (one path shared by all edges), not per node u
  as the paper's G(s) is reported to be written; both readings do the same;
- G is the full logits tensor at every (real, not padded) position; the norm is taken per
  example over [pos, d_model] (as CircuitKIT; Brokttv's takes one norm over the batch), so
  each example's path point moves exactly 1 per step;
- k = `steps`, default 5 (reported best over 3..20); x_0 is not averaged.
Each point's forward serves both its attribution and the next step's direction
(`grad_path_scores`: k + 1 forwards and 2k backwards); a test checks it against the path
built first and attributed after.
Special case (tested): where the model's output is linear in its input embedding, every
gradient along any path is the same, and EAP-GP equals EAP.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.discovery import DiscoveryRun, EdgeScores
from bench.runtime import MaskedRuntime
from methods.eap_ig import STEPS_DEFAULTS, parse_steps, steps_option
from methods.spec import register_method


def squared_distance(
    target_logits: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """GradPath's objective: || G(x) - G(x_ablated) ||^2 over every real position and logit."""
    if attention_mask is None:
        return lambda logits: ((logits - target_logits) ** 2).sum()
    real = attention_mask[..., None].to(target_logits.dtype)
    return lambda logits: ((logits - target_logits) ** 2 * real).sum()


def unit_step(point: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """x - g / ||g||, the norm taken per example, so each example's point moves exactly 1."""
    norm = grad.flatten(1).norm(dim=1).clamp_min(torch.finfo(grad.dtype).tiny)
    return (point - grad / norm[:, None, None]).detach()


def grad_path(
    runtime: MaskedRuntime,
    tokens: torch.Tensor,
    start: torch.Tensor,
    target_logits: torch.Tensor,
    steps: int,
    attention_mask: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The GradPath points x_1..x_k from `start`, each a unit step per example."""
    distance = squared_distance(target_logits, attention_mask)
    points, point = [], start.detach()
    for _ in range(steps):
        point = point.clone().requires_grad_(True)
        with torch.enable_grad():
            logits = runtime.forward_from_embedding(tokens, point, attention_mask)
            (grad,) = torch.autograd.grad(distance(logits), point)
        point = unit_step(point, grad)
        points.append(point)
    return points


def grad_path_scores(run: DiscoveryRun, target_logits: torch.Tensor, steps: int) -> torch.Tensor:
    """`path_average` over `grad_path`, with each point's forward shared by its attribution
    and the next step's direction: k + 1 forwards and 2k backwards instead of 2k of each."""
    runtime, clean, padding = run.runtime, run.data.clean, run.data.attention_mask
    distance = squared_distance(target_logits, padding)
    deltas = runtime.deltas(clean, run.ablated)
    point = runtime.input_embedding(clean, padding).clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(distance(runtime.forward_from_embedding(clean, point, padding)), point)
    total = torch.zeros(run.graph.n_sources, run.graph.n_destinations, dtype=deltas.dtype)
    for step in range(1, steps + 1):
        point = unit_step(point, grad)
        last = step == steps
        scores, grad = runtime.edge_and_input_gradients(
            clean,
            run.objective,
            deltas,
            embedding=point,
            input_objective=None if last else distance,
            attention_mask=padding,
        )
        total += scores
    return total / steps


@register_method(
    "eap-gp",
    description="EAP with GradPath: gradients averaged along an adaptive path away from saturation",
    citation="Zhang et al. 2025, arXiv 2502.06852",
    additive_over_examples=True,  # a mean over examples: see bench.chunking
    defaults=STEPS_DEFAULTS,
    check=parse_steps,
)
def eap_gp(run: DiscoveryRun) -> EdgeScores:
    clean = run.data.clean
    with torch.no_grad():
        ablated_embedding = run.ablated.outputs[:, :, 0].expand(*clean.shape, -1)
        target = run.runtime.forward_from_embedding(clean, ablated_embedding, run.data.attention_mask)
    return EdgeScores(run.graph.to_edges(grad_path_scores(run, target, steps_option(run))).float())
