"""The masked-edge runtime: the one forward pass every method and every score runs through.

Each destination input is rebuilt from the upstream outputs of the current run and of
an ablated run (corrupted input, mean over a reference set, or zero):

    input_v = ablated_input_v + sum_u m_uv * (out_u - ablated_out_u)

so m = 1 everywhere reproduces the plain forward and m = 0 everywhere the ablated one.
The pass is differentiable in `m` and runs several masks in one call by stacking them
on the batch axis. Hooks live only here, inside a context manager that removes them.

Example:
    >>> runtime = MaskedRuntime(model)                       # doctest: +SKIP
    >>> ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)  # doctest: +SKIP
    >>> logits = runtime.forward(clean, runtime.graph.mask(), ablated)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from transformer_lens import HookedTransformer

from bench.graph import Graph

AblationKind = Literal["corrupted", "mean", "zero"]
ABLATION_KINDS: tuple[str, ...] = ("corrupted", "mean", "zero")


def enable_edge_hooks(model: HookedTransformer) -> HookedTransformer:
    """Switch on the per-head output and per-head q/k/v input hooks the graph needs."""
    cfg = model.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None)
    if n_kv is not None and n_kv != cfg.n_heads:
        raise ValueError(
            f"model {cfg.model_name!r} uses grouped-query attention ({n_kv} kv heads for "
            f"{cfg.n_heads} query heads); CDBench's graph needs one k/v input per head"
        )
    model.set_use_attn_result(True)
    model.set_use_split_qkv_input(True)
    if not cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    return model


@dataclass(frozen=True)
class AblatedRun:
    """What each source writes in the ablated run, and the constants no source owns.

    Attributes:
        kind: the ablation kind that produced it.
        outputs: `[batch or 1, pos, n_sources, d_model]` ablated source outputs.
    """

    kind: str
    outputs: torch.Tensor


class MaskedRuntime:
    """Runs a TransformerLens model with an edge mask over its `Graph`."""

    def __init__(self, model: HookedTransformer, graph: Graph | None = None) -> None:
        self.model = enable_edge_hooks(model)
        self.graph = graph or Graph.from_model(model)
        cfg = model.cfg
        self._n_heads = cfg.n_heads
        self._n_layers = cfg.n_layers
        # Residual-stream constants owned by no node: each attention layer's output bias.
        # attn_bias_before[L] is added to every input read at layer L (heads), and to MLP L
        # when it reads after attention.
        b_o = torch.stack([block.attn.b_O.detach() for block in model.blocks])
        zero = torch.zeros_like(b_o[:1])
        self._bias_through = torch.cumsum(torch.cat([zero, b_o]), dim=0)  # [n_layers + 1, d_model]

    # --- plain runs --------------------------------------------------------------------------

    @torch.no_grad()
    def source_outputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every source's output in the plain forward: `[batch, pos, n_sources, d_model]`."""
        names = {"blocks.0.hook_resid_pre"}
        for layer in range(self._n_layers):
            names.add(f"blocks.{layer}.attn.hook_result")
            if layer in self.graph.mlp_src:
                names.add(f"blocks.{layer}.hook_mlp_out")
        _, cache = self.model.run_with_cache(tokens, names_filter=lambda n: n in names)
        parts = [cache["blocks.0.hook_resid_pre"][:, :, None]]
        for layer in range(self._n_layers):
            parts.append(cache[f"blocks.{layer}.attn.hook_result"])
            if layer in self.graph.mlp_src:
                parts.append(cache[f"blocks.{layer}.hook_mlp_out"][:, :, None])
        return torch.cat(parts, dim=2)

    def ablate(
        self,
        kind: str,
        *,
        corrupted_tokens: torch.Tensor | None = None,
        reference_tokens: torch.Tensor | None = None,
        like: torch.Tensor | None = None,
    ) -> AblatedRun:
        """Build the ablated run an edge falls back to when its mask is 0.

        Args:
            kind: "corrupted" (outputs on `corrupted_tokens`), "mean" (per-position mean of
                outputs over `reference_tokens`) or "zero".
            like: tokens whose shape the zero ablation should match (needed for "zero").
        """
        if kind == "corrupted":
            if corrupted_tokens is None:
                raise ValueError("ablation 'corrupted' needs corrupted_tokens")
            return AblatedRun(kind, self.source_outputs(corrupted_tokens))
        if kind == "mean":
            if reference_tokens is None:
                raise ValueError("ablation 'mean' needs reference_tokens")
            return AblatedRun(kind, self.source_outputs(reference_tokens).mean(0, keepdim=True))
        if kind == "zero":
            if like is None:
                raise ValueError("ablation 'zero' needs `like` (tokens of the run's shape)")
            shape = (1, like.shape[1], self.graph.n_sources, self.model.cfg.d_model)
            return AblatedRun(kind, torch.zeros(shape, dtype=self.model.cfg.dtype, device=like.device))
        raise ValueError(f"unknown ablation kind {kind!r}; valid choices: {', '.join(ABLATION_KINDS)}")

    # --- the masked forward ------------------------------------------------------------------

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, ablated: AblatedRun) -> torch.Tensor:
        """Logits of the model run with `mask` over the graph's edges.

        Args:
            tokens: `[batch, pos]` token ids of the run being masked (the clean input).
            mask: `[n_sources, n_destinations]` or `[n_masks, n_sources, n_destinations]`,
                values in [0, 1]; only cells of `graph.real_edge_mask` are read.
            ablated: from `ablate`, with batch 1 or the same batch as `tokens`.

        Returns:
            `[batch, pos, d_vocab_out]`, or `[n_masks, batch, pos, d_vocab_out]` for a stack.
        """
        single = mask.dim() == 2
        masks = mask[None] if single else mask
        n_masks, batch = masks.shape[0], tokens.shape[0]
        masks = masks.to(self.model.cfg.dtype)
        hooks = _MaskHooks(self, masks, ablated.outputs, batch)
        stacked = tokens.repeat(n_masks, 1) if n_masks > 1 else tokens
        with self.model.hooks(fwd_hooks=hooks.fwd_hooks()):
            logits = self.model(stacked)
        logits = logits.view(n_masks, batch, *logits.shape[1:])
        return logits[0] if single else logits


class _MaskHooks:
    """Per-call state of one masked forward: the deltas each source wrote so far."""

    def __init__(self, runtime: MaskedRuntime, masks: torch.Tensor, ablated: torch.Tensor, batch: int):
        self.rt = runtime
        self.graph = runtime.graph
        self.masks = masks  # [M, S, Dst]
        self.n_masks = masks.shape[0]
        self.batch = batch
        self.ablated = ablated  # [B or 1, P, S, D]
        self.deltas: list[torch.Tensor] = []  # per source group, [M, B, P, n_group, D]
        self.n_written = 0
        self.head_inputs: dict[int, torch.Tensor] = {}

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(self.n_masks, self.batch, *x.shape[1:])

    def _record(self, out: torch.Tensor, n_group: int) -> None:
        """Store out - ablated_out for the next `n_group` sources; `out` is [MB, P, n, D]."""
        start = self.n_written
        abl = self.ablated[:, :, start : start + n_group]
        self.deltas.append(self._split(out) - abl[None])
        self.n_written += n_group

    def _inputs(self, dst: slice, bias_layer: int) -> torch.Tensor:
        """Rebuilt inputs for destinations `dst` that all read the first `n_written` sources."""
        n_up = self.n_written
        expected = int(self.graph.n_upstream[dst.start])
        assert n_up == expected, f"hook order broke: {n_up} sources written, {expected} expected"
        ablated_in = self.ablated[:, :, :n_up].sum(2) + self.rt._bias_through[bias_layer]
        delta = torch.cat(self.deltas, dim=3) if len(self.deltas) > 1 else self.deltas[0]
        m = self.masks[:, :n_up, dst]
        patched = torch.einsum("mbpud,muv->mbpvd", delta, m)
        rebuilt = ablated_in[None, :, :, None] + patched  # [M, B, P, V, D]
        return rebuilt.reshape(self.n_masks * self.batch, *rebuilt.shape[2:])

    # hook functions -------------------------------------------------------------------------

    def fwd_hooks(self) -> list[tuple[str, Callable]]:
        hooks: list[tuple[str, Callable]] = [("blocks.0.hook_resid_pre", self._embed)]
        n_layers = self.rt._n_layers
        for layer in range(n_layers):
            for letter_index, letter in enumerate("qkv"):
                hooks.append((f"blocks.{layer}.hook_{letter}_input", self._qkv_hook(layer, letter_index)))
            hooks.append((f"blocks.{layer}.attn.hook_result", self._heads_out))
            if layer in self.graph.mlp_src:
                hooks.append((f"blocks.{layer}.hook_mlp_in", self._mlp_in_hook(layer)))
                hooks.append((f"blocks.{layer}.hook_mlp_out", self._mlp_out))
        hooks.append((f"blocks.{n_layers - 1}.hook_resid_post", self._logits_in))
        return hooks

    def _embed(self, resid: torch.Tensor, hook: object) -> torch.Tensor:
        self._record(resid[:, :, None], 1)
        return resid

    def _qkv_hook(self, layer: int, letter_index: int) -> Callable:
        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            if layer not in self.head_inputs:
                rebuilt = self._inputs(self.graph.layer_head_dst[layer], bias_layer=layer)
                self.head_inputs[layer] = rebuilt.view(*rebuilt.shape[:2], self.rt._n_heads, 3, -1)
            return self.head_inputs[layer][:, :, :, letter_index]

        return hook

    def _heads_out(self, result: torch.Tensor, hook: object) -> torch.Tensor:
        self._record(result, result.shape[2])
        return result

    def _mlp_in_hook(self, layer: int) -> Callable:
        parallel = self.graph.spec.parallel_attn_mlp

        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            dst = self.graph.mlp_dst[layer]
            bias_layer = layer if parallel else layer + 1
            if parallel:  # heads of this layer ran already but are not upstream of its MLP
                return self._inputs_excluding_last(slice(dst, dst + 1), bias_layer)[:, :, 0]
            return self._inputs(slice(dst, dst + 1), bias_layer)[:, :, 0]

        return hook

    def _inputs_excluding_last(self, dst: slice, bias_layer: int) -> torch.Tensor:
        last = self.deltas.pop()
        self.n_written -= last.shape[3]
        try:
            return self._inputs(dst, bias_layer)
        finally:
            self.deltas.append(last)
            self.n_written += last.shape[3]

    def _mlp_out(self, out: torch.Tensor, hook: object) -> torch.Tensor:
        self._record(out[:, :, None], 1)
        return out

    def _logits_in(self, resid: torch.Tensor, hook: object) -> torch.Tensor:
        dst = self.graph.logits_dst
        return self._inputs(slice(dst, dst + 1), bias_layer=self.rt._n_layers)[:, :, 0]
