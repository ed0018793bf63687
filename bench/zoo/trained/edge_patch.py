"""Edge-level resampling with gradients to the weights, for SIIT's strictness loss.

Node-level strictness (resample a non-aligned component's whole output) leaves the edges
*between* aligned components unconstrained: a low-level head may read an aligned component
that its Tracr counterpart does not, and then the ground truth patched in alone fails. Here
each destination input is rebuilt as the masked runtime does,

    input_v = current_input_v - sum_u off_uv * (out_u - source_out_u),

with `off` chosen per example, so the loss can ask that resampling any edge outside the
circuit changes nothing. (`bench.runtime` freezes the weights, so training cannot use it.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformer_lens import HookedTransformer

from bench.graph import Graph

RESID_PRE = "blocks.0.hook_resid_pre"


def source_outputs(model: HookedTransformer, acts: dict[str, torch.Tensor]) -> torch.Tensor:
    """`[batch, pos, n_sources, d_model]` from a run's captured activations (graph source order)."""
    parts = [acts[RESID_PRE][:, :, None]]
    for layer in range(model.cfg.n_layers):
        z = acts[f"blocks.{layer}.attn.hook_z"]
        parts.append(torch.einsum("bphe,hed->bphd", z, model.blocks[layer].attn.W_O))
        if not model.cfg.attn_only:
            parts.append(acts[f"blocks.{layer}.hook_mlp_out"][:, :, None])
    return torch.cat(parts, dim=2)


class EdgeResample:
    """Forward hooks that resample the edges marked in `off` (`[batch, n_sources, n_destinations]`)
    from `source` (`[batch, pos, n_sources, d_model]`); the model needs `enable_edge_hooks`."""

    def __init__(self, model: HookedTransformer, graph: Graph, off: torch.Tensor, source: torch.Tensor) -> None:
        self.model, self.graph = model, graph
        self.off = off.to(source.dtype)
        self.source = source
        self.outs: list[torch.Tensor] = []
        self.head_fix: dict[int, torch.Tensor] = {}  # per layer: the q, k, v corrections of all heads

    def _minus(self, x: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        n_up = int(self.graph.n_upstream[cols[0]])
        delta = torch.cat(self.outs, dim=2)[:, :, :n_up] - self.source[:, :, :n_up]
        return torch.einsum("bpud,buv->bpvd", delta, self.off[:, :n_up, cols])

    def hooks(self) -> list[tuple[str, Callable]]:
        g = self.graph
        hooks: list[tuple[str, Callable]] = [(RESID_PRE, self._record(lambda x: x[:, :, None]))]
        for layer in range(self.model.cfg.n_layers):
            for letter_index, letter in enumerate("qkv"):
                hooks.append((f"blocks.{layer}.hook_{letter}_input", self._patch_heads(layer, letter_index)))
            w_o = self.model.blocks[layer].attn.W_O
            hooks.append(
                (f"blocks.{layer}.attn.hook_z", self._record(lambda z, w=w_o: torch.einsum("bphe,hed->bphd", z, w)))
            )
            if layer in g.mlp_dst:
                hooks.append(
                    (f"blocks.{layer}.hook_mlp_in", self._patch(torch.tensor([g.mlp_dst[layer]]), squeeze=True))
                )
                hooks.append((f"blocks.{layer}.hook_mlp_out", self._record(lambda x: x[:, :, None])))
        last = f"blocks.{self.model.cfg.n_layers - 1}.hook_resid_post"
        hooks.append((last, self._patch(torch.tensor([g.logits_dst]), squeeze=True)))
        return hooks

    def _record(self, as_sources: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
            self.outs.append(as_sources(x))
            return x

        return hook

    def _patch_heads(self, layer: int, letter_index: int) -> Callable:
        dst = self.graph.layer_head_dst[layer]

        def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
            if layer not in self.head_fix:
                fix = self._minus(x, torch.arange(dst.start, dst.stop))
                self.head_fix[layer] = fix.view(*fix.shape[:2], -1, 3, fix.shape[-1])
            return x - self.head_fix[layer][:, :, :, letter_index]

        return hook

    def _patch(self, cols: torch.Tensor, squeeze: bool = False) -> Callable:
        def hook(x: torch.Tensor, hook: Any) -> torch.Tensor:
            fix = self._minus(x, cols)
            return x - (fix[:, :, 0] if squeeze else fix)

        return hook
