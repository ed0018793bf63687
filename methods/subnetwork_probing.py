"""Subnetwork probing (Cao, Sanh & Rush 2021, "Low-Complexity Probing via Finding
Subnetworks", NAACL) as the ACDC paper's node baseline (Conmy et al. 2023, Sec. 4 and
appendix; ArthurConmy/Automatic-Circuit-Discovery @bc99ace, `subnetwork_probing/train.py`
and `.../transformer_lens/hook_points.py` `MaskedHookPoint`): learn one hard-concrete gate
per node with the weights frozen, then rank nodes by how likely their gate stays open.

- Gates: the hard concrete of Edge Pruning (`methods.edge_pruning.sample_gates`, beta = 2/3,
  stretch (-0.1, 1.1)), one per head and MLP. A gate scales the node's output around the
  run's ablation: every out-edge of u gets mask z_u, so the masked runtime's ablation is
  the one every method uses. ACDC gates each head's q, k and v and each MLP output
  separately (so a head can lose one input); one gate per output keeps the node set the
  unit. `input` is not gated: it carries the prompt itself, and ACDC's SP leaves the
  embeddings unmasked too. One gate sample per step, shared by the batch, from a
  generator seeded with `run.seed` (the only randomness).
- Objective: as Edge Pruning (`choose_objective`): KL to the full model at the task's
  output positions, or minus the task metric where the model has one output logit (ACDC's
  SP default loss is KL).
- Sparsity: `penalty` x the expected number of nodes kept, sum_u P(z_u != 0) (the expected
  L0 norm, Cao et al.'s form). ACDC's code multiplies the mean over mask tensors instead,
  which makes the price of a node shrink with the model; with the sum, a node stays when
  it is worth more than `penalty` of objective.
- Defaults: ACDC's init (mask_p 0.9: log_alpha = ln 5, P(z != 0) = 0.96) and Adam; its
  3000 steps at lr 0.001 become 300 at lr 0.1, Edge Pruning's budget (one masked forward
  and backward per step, so the same cost). `penalty` 0.1, measured on the offline tasks
  (seed 0): 0.001 to 0.1 gave the same ROC AUC and faithfulness on Tracr and siit-sort;
  0.1 raised the ROC AUC on siit-reverse (0.89 -> 0.96) and induction (0.70 -> 0.76) over
  0.01; 1 dropped a true node of tracr-reverse under zero ablation. Adam is scale-free, so a node the objective
  never defends falls at the same pace under any penalty (such nodes tie).
- Scores: each node's P(z != 0) after training, float64, in `node_scores`; edges by
  `methods.node_scores.edges_from_nodes` (an edge scores its weaker end), so each
  threshold is the circuit of the nodes above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from bench.discovery import DiscoveryRun, EdgeScores
from methods.edge_pruning import OBJECTIVES, choose_objective, keep_probability, sample_gates
from methods.node_scores import edges_from_nodes
from methods.spec import TRAINS, config_from_options, register_method


@dataclass(frozen=True)
class ProbingConfig:
    """Budget and hyperparameters; each can be set through `run.options`.

    Args:
        steps: optimisation steps.
        lr: Adam learning rate of the log_alpha parameters.
        penalty: lambda, the price of one expected kept node in objective units.
        init: initial log_alpha of every gate (ln 5: ACDC's mask_p 0.9).
        objective: "kl", "metric" or "auto" (KL unless the model has a single output logit).
    """

    steps: int = 300
    lr: float = 0.1
    penalty: float = 0.1
    init: float = math.log(5)
    objective: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.penalty >= 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        if not math.isfinite(self.init):
            raise ValueError(f"init must be finite, got {self.init}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")

    @classmethod
    def from_options(cls, options: dict[str, object]) -> ProbingConfig:
        """Build from `run.options`; an unknown key or a bad value is a one-line error."""
        return config_from_options(cls, options, "subnetwork-probing")


def node_mask(run: DiscoveryRun, gates: torch.Tensor) -> torch.Tensor:
    """The edge mask where every out-edge of component u carries `gates[u - 1]` and the
    input's out-edges are 1: `[n_sources, n_destinations]`."""
    per_source = torch.cat([torch.ones(1, dtype=gates.dtype), gates])
    return run.graph.to_matrix(per_source[run.graph.edge_src])


def train_node_log_alpha(
    run: DiscoveryRun, config: ProbingConfig, on_step: Callable[[int, float, torch.Tensor], None] | None = None
) -> torch.Tensor:
    """Train one gate per component (every source but `input`) on `run`.

    Args:
        on_step: called after each step with the step, the objective on its sampled gates
            and P(z != 0) per component.

    Returns:
        The final log_alpha, in `graph.sources[1:]` order.
    """
    generator = torch.Generator().manual_seed(run.seed)
    log_alpha = torch.full((run.graph.n_sources - 1,), config.init, requires_grad=True)
    optimizer = torch.optim.Adam([log_alpha], lr=config.lr)
    loss_fn = choose_objective(run, config.objective)
    with torch.enable_grad():  # the runtime keeps the model's weights frozen
        for step in tqdm(range(config.steps), desc="subnetwork probing", unit="step", leave=False):
            mask = node_mask(run, sample_gates(log_alpha, generator))
            objective = loss_fn(run.runtime.forward(run.data.clean, mask, run.ablated))
            loss = objective + config.penalty * keep_probability(log_alpha).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, objective.item(), keep_probability(log_alpha.detach()))
    return log_alpha.detach()


@register_method(
    "subnetwork-probing",
    description="hard-concrete gate per head and MLP trained on KL to the full model + lambda x expected nodes kept",
    citation="Cao, Sanh & Rush 2021, Low-Complexity Probing via Finding Subnetworks, NAACL; as in Conmy et al. 2023",
    stochastic=True,
    costly_reruns=TRAINS,
    defaults=asdict(ProbingConfig()),
    check=ProbingConfig.from_options,
)
def subnetwork_probing(run: DiscoveryRun) -> EdgeScores:
    """Score nodes by P(z != 0) after training and edges by their weaker end."""
    log_alpha = train_node_log_alpha(run, ProbingConfig.from_options(run.options))
    keep = keep_probability(log_alpha.double())
    return edges_from_nodes(run.graph, torch.cat([torch.ones(1, dtype=keep.dtype), keep]))
