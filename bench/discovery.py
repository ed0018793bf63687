"""The contract between the suite and a method adapter: `DiscoveryRun` in, `EdgeScores` out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from bench.task_data import TaskData

if TYPE_CHECKING:  # annotations only, so the contract imports torch and nothing heavier
    from bench.graph import Graph
    from bench.runtime import AblatedRun, MaskedRuntime
    from bench.shared_passes import SharedPasses

# On CPU, stacking masks pays only while one layer's rebuilt inputs stay small: GPT-2 small's
# masked forward cost 0.5 s per mask of 128 tokens at 2 or 4 masks (28 or 56 MB of q/k/v
# inputs per layer) and 0.9 s at 8 (113 MB), where memory traffic and fresh pages dominate.
CPU_LAYER_INPUTS_BYTES = 64e6


@dataclass(frozen=True)
class DiscoveryRun:
    """Everything a method may use to score edges.

    Attributes:
        runtime: the masked-edge runtime (the model and its graph); methods never hook the
            model themselves.
        data: the task's examples and metric.
        ablation: the ablation kind edges fall back to ("corrupted", "mean", "zero",
            "zero-token"; see `MaskedRuntime.ablate`).
        passes: the ablated run and the full model's logits for `data` and `ablation`,
            computed when first read (`ablated`, `full_logits`) and shared by every reader.
        seed: for methods with randomness.
        options: method-specific parameters (e.g. integration steps), from the CLI.
        max_batch_tokens: how many (mask x example x position) rows one forward may hold.
    """

    runtime: MaskedRuntime
    data: TaskData
    ablation: str
    passes: SharedPasses
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    max_batch_tokens: int = 200_000

    @property
    def ablated(self) -> AblatedRun:
        """The ablated run prepared for `data` and `ablation` (computed on first use)."""
        return self.passes.ablated

    @property
    def full_logits(self) -> torch.Tensor:
        """The unmasked model's logits on the clean input (computed on first use)."""
        return self.passes.full_logits

    def masks_per_forward(self, buffer_budget_bytes: float = 1.5e9) -> int:
        """How many masks one batched masked forward may stack: bounded by `max_batch_tokens`,
        by the runtime's delta buffer (n_masks x n_sources x tokens x d_model floats) and, on
        CPU, by `CPU_LAYER_INPUTS_BYTES` of one layer's rebuilt inputs."""
        tokens = self.data.clean.numel()
        cfg = self.runtime.model.cfg
        row_bytes = cfg.d_model * torch.finfo(cfg.dtype).bits // 8
        per_mask_buffer = self.graph.n_sources * tokens * row_bytes
        limits = [self.max_batch_tokens // tokens, int(buffer_budget_bytes // per_mask_buffer)]
        if torch.device(cfg.device).type == "cpu":
            per_mask_inputs = 3 * cfg.n_heads * tokens * row_bytes  # every head's q, k and v input
            limits.append(int(CPU_LAYER_INPUTS_BYTES // per_mask_inputs))
        return max(1, min(limits))

    @property
    def graph(self) -> Graph:
        return self.runtime.graph

    def objective(self, logits: torch.Tensor) -> torch.Tensor:
        """The task metric averaged over examples: `[..., n, pos, vocab]` -> `[...]`."""
        return self.data.metric(logits).mean(-1)

    @property
    def has_distribution(self) -> bool:
        """Whether the outputs form a distribution (more than one logit), so KL is meaningful."""
        return self.runtime.model.cfg.d_vocab_out > 1

    def kl_to_full(self, logits: torch.Tensor) -> torch.Tensor:
        """KL(full model || this run) of the next-token distributions at the task's output
        positions (real tokens only), summed over positions and averaged over examples:
        `[..., n, pos, vocab]` -> `[...]`. Zero for the full model; the objective ACDC and
        Edge Pruning minimise."""
        return self.kl_at_outputs(self.data.outputs(logits))

    def kl_at_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """`kl_to_full` of logits already taken at the output positions, `[..., n, k, vocab]`
        (for runs that compute only those positions)."""
        if not self.has_distribution:
            raise ValueError(
                "KL to the full model is always 0 for a model with one output (e.g. tracr-xproportion); "
                "use the task metric"
            )
        full = torch.log_softmax(self.data.outputs(self.full_logits), dim=-1)
        this = torch.log_softmax(outputs, dim=-1)
        per_position = (full.exp() * (full - this)).sum(-1)
        weights = self.data.output_weights
        if weights is not None:
            per_position = per_position * weights.to(per_position.dtype)
        return per_position.sum(-1).mean(-1)


@dataclass(frozen=True)
class EdgeScores:
    """One float per edge, in `graph.edge_names` order; a larger |score| is more important.

    Patching and gradient methods estimate metric(full model) - metric(model without the
    edge), so positive edges help the task; search methods use their own scale (ACDC: the
    largest tau at which the edge survives; Edge Pruning: its probability of being kept).
    Rankings use the absolute value unless `signed=True` is asked for, as the peers do.

    Attributes:
        values: one score per edge.
        node_scores: for methods that score nodes and derive edge scores from them
            (subnetwork probing, HISP), each scored node's own score; None otherwise.
    """

    values: torch.Tensor
    node_scores: dict[str, float] | None = None

    def ranking(self, signed: bool = False) -> torch.Tensor:
        """Edge positions, most important first (stable, so ties keep graph order)."""
        key = self.values if signed else self.values.abs()
        return torch.argsort(key, descending=True, stable=True)


MethodFn = Callable[[DiscoveryRun], EdgeScores]


def prepare_run(
    runtime: MaskedRuntime,
    data: TaskData,
    ablation: str,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> DiscoveryRun:
    """A run of `data` under `ablation`; its passes (the ablated run, the full logits) are
    computed when a method or a score first reads them, once, so each method pays only for
    what it reads. An unknown ablation kind fails here, before any work."""
    from bench.runtime import ABLATION_KINDS
    from bench.shared_passes import SharedPasses

    if ablation not in ABLATION_KINDS:
        raise ValueError(f"unknown ablation kind {ablation!r}; valid choices: {', '.join(ABLATION_KINDS)}")
    return DiscoveryRun(runtime, data, ablation, SharedPasses(runtime, data, ablation), seed, dict(options or {}))
