"""The masked-edge runtime: the one forward pass every method and every score runs through.

Each destination input is rebuilt from the upstream outputs of the current run and of
an ablated run (corrupted input, mean over a reference set, or zero):

    input_v = ablated_input_v + sum_u m_uv * (out_u - ablated_out_u)

so m = 1 everywhere reproduces the plain forward and m = 0 everywhere the ablated one.
The pass is differentiable in `m` and runs several masks in one call by stacking them
on the batch axis. Masks of 0 and 1 that remove few edges (exact patching's) take a sparse
path (`bench.sparse_masking`): each input is the model's own residual stream less the removed
edges' deltas, so the forward costs about a plain one (`MaskedRuntime.forward`'s `path`).
Hooks live only here, inside a context manager that removes them.
Padded batches carry an attention mask (`bench.padding`): the ablated run records the
mask of the run it stands in for, and every forward masks padded keys with it.

Example:
    >>> runtime = MaskedRuntime(model)                       # doctest: +SKIP
    >>> ablated = runtime.ablate("corrupted", corrupted_tokens=corrupt)  # doctest: +SKIP
    >>> logits = runtime.forward(clean, runtime.graph.mask(), ablated)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
from transformer_lens import HookedTransformer
from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES

from bench.graph import Graph
from bench.padding import forward_kwargs, key_mask_hooks, padded_forward, padding_mask, real_position_mean
from bench.sparse_masking import SPARSE_MAX_REMOVED, SparseMaskHooks, removed_edges

AblationKind = Literal["corrupted", "mean", "zero", "zero-token"]
ABLATION_KINDS: tuple[str, ...] = ("corrupted", "mean", "zero", "zero-token")
ForwardPath = Literal["auto", "dense", "sparse"]
FORWARD_PATHS: tuple[str, ...] = ("auto", "dense", "sparse")


def enable_edge_hooks(model: HookedTransformer) -> HookedTransformer:
    """Switch on the per-head q/k/v input and MLP input hooks the graph needs.

    Grouped-query attention runs ungrouped (one key and value input per query head), as MIB
    and the EAP-IG library run it, so the graph is MIB's. Blocks that normalise their summed
    attention output (Gemma-2's post-attention norm) split it per head with the norm's scale
    of the same forward (`post_norm_head_writes`).
    """
    cfg = model.cfg
    if cfg.original_architecture in POST_NORM_ARCHITECTURES:
        raise ValueError(
            f"model {cfg.model_name!r} ({cfg.original_architecture}) normalises each block's output before "
            "the residual add with the pre-attention norm; CDBench's graph supports pre-norm blocks and "
            "Gemma-2-style post-norms only"
        )
    if cfg.use_normalization_before_and_after:
        biased = [layer for layer, block in enumerate(model.blocks) if bool(block.attn.b_O.detach().ne(0).any())]
        if cfg.normalization_type not in ("RMS", "RMSPre") or biased:
            raise ValueError(
                f"model {cfg.model_name!r}: a post-attention norm is split per head only for RMSNorm without "
                f"an attention output bias (Gemma-2); got {cfg.normalization_type} with b_O in layers {biased}"
            )
    if getattr(cfg, "n_key_value_heads", None) is not None:
        model.set_ungroup_grouped_query_attention(True)
    # Per-head outputs come from hook_z @ W_O in this module: TransformerLens's own
    # use_attn_result path broadcasts a [batch, pos, head, d_head, d_model] product and
    # made GPT-2 small's forward 5x slower.
    model.set_use_attn_result(False)
    model.set_use_split_qkv_input(True)
    if not cfg.attn_only:
        model.set_use_hook_mlp_in(True)
    return model


@dataclass
class AblatedRun:
    """What each source writes in the ablated run, and the constants no source owns.

    Attributes:
        kind: the ablation kind that produced it.
        outputs: `[batch or 1, pos, n_sources, d_model]` ablated source outputs.
        attention_mask: `[batch, pos]` the padding of the run this stands in for (and of its
            corrupted input), None without padding; every masked forward uses it.
    """

    kind: str
    outputs: torch.Tensor
    attention_mask: torch.Tensor | None = None

    @cached_property
    def cumulative(self) -> torch.Tensor:
        """Running sum over sources: `cumulative[:, :, n - 1]` is the first n sources' total."""
        return self.outputs.cumsum(dim=2)


class MaskedRuntime:
    """Runs a TransformerLens model with an edge mask over its `Graph`."""

    def __init__(self, model: HookedTransformer, graph: Graph | None = None) -> None:
        # Methods differentiate with respect to masks and activations, never weights: frozen
        # weights skip every weight-gradient matmul and leave no stray .grad behind.
        self.model = enable_edge_hooks(model).requires_grad_(False)
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
        # The attention output biases a destination reads: those of the layers before it
        # (and, for a sequential MLP, its own layer's).
        self._bias_layer = [self._n_layers] * self.graph.n_destinations
        for layer in range(self._n_layers):
            for dst in range(self.graph.layer_head_dst[layer].start, self.graph.layer_head_dst[layer].stop):
                self._bias_layer[dst] = layer
            if layer in self.graph.mlp_dst:
                self._bias_layer[self.graph.mlp_dst[layer]] = layer if self.graph.spec.parallel_attn_mlp else layer + 1

    # --- plain runs --------------------------------------------------------------------------

    @contextmanager
    def _hooked(self, attention_mask: torch.Tensor | None, fwd_hooks: Sequence[tuple[str, Callable]] = ()) -> Iterator:
        """Attach `fwd_hooks`, and the hooks that mask padded keys, for the forwards inside."""
        with self.model.hooks(fwd_hooks=[*fwd_hooks, *key_mask_hooks(self.model, attention_mask)]):
            yield

    def _call(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The model's forward on `tokens` with their padding (inside `_hooked`); logits in at
        least float32, so metrics and scores of a bf16 model are computed in float32."""
        return _widen(self.model(tokens, **forward_kwargs(self.model, tokens, attention_mask)))

    def run(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Plain logits of a (possibly padded) batch: `[batch, pos, d_vocab_out]`."""
        return _widen(padded_forward(self.model, tokens, attention_mask))

    @torch.no_grad()
    def source_outputs(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Every source's output in the plain forward: `[batch, pos, n_sources, d_model]`."""
        cache: dict[str, torch.Tensor] = {}
        mask = padding_mask(attention_mask)
        with self._hooked(mask, self._source_recorders(cache)):
            self._call(tokens, mask)
        return self._sources_from(cache)

    def _source_recorders(self, cache: dict[str, torch.Tensor]) -> list[tuple[str, Callable]]:
        """Hooks that store (detached) what each source writes into `cache`, by hook name."""
        names = ["blocks.0.hook_resid_pre"]
        for layer in range(self._n_layers):
            names.append(f"blocks.{layer}.attn.hook_z")
            if layer in self.graph.mlp_src:
                names.append(f"blocks.{layer}.hook_mlp_out")

        def keep(x: torch.Tensor, hook: object) -> None:
            cache[hook.name] = x.detach()  # type: ignore[attr-defined]

        return [(name, keep) for name in names]

    @torch.no_grad()
    def _sources_from(self, cache: dict[str, torch.Tensor]) -> torch.Tensor:
        """`[batch, pos, n_sources, d_model]` from what `_source_recorders` stored."""
        parts = [cache["blocks.0.hook_resid_pre"][:, :, None]]
        for layer in range(self._n_layers):
            parts.append(self.head_outputs(layer, cache[f"blocks.{layer}.attn.hook_z"]))
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
        attention_mask: torch.Tensor | None = None,
        reference_mask: torch.Tensor | None = None,
    ) -> AblatedRun:
        """Build the ablated run an edge falls back to when its mask is 0.

        Args:
            kind: "corrupted" (outputs on `corrupted_tokens`), "mean" (per-position mean of
                outputs over `reference_tokens`, real positions only), "zero" (every output
                zero, the `input` node's token + position embedding included, as auto-circuit)
                or "zero-token" (the same, but `input` keeps its positional part: the EAP-IG
                library's and so MIB's zero ablation, which zeroes only `hook_embed`).
            like: tokens whose shape the zero ablations should match (needed for both).
            attention_mask: the padding of the run being masked, shared by `corrupted_tokens`
                (a corruption is as long as its clean input); None: no padding.
            reference_mask: the padding of `reference_tokens`; None: no padding.
        """
        mask = padding_mask(attention_mask)
        if kind == "corrupted":
            if corrupted_tokens is None:
                raise ValueError("ablation 'corrupted' needs corrupted_tokens")
            return AblatedRun(kind, self.source_outputs(corrupted_tokens, mask), mask)
        if kind == "mean":
            if reference_tokens is None:
                raise ValueError("ablation 'mean' needs reference_tokens")
            reference = padding_mask(reference_mask)
            outputs = self.source_outputs(reference_tokens, reference)
            return AblatedRun(kind, real_position_mean(outputs, reference, mask), mask)
        if kind in ("zero", "zero-token"):
            if like is None:
                raise ValueError(f"ablation {kind!r} needs `like` (tokens of the run's shape)")
            shape = (1, like.shape[1], self.graph.n_sources, self.model.cfg.d_model)
            outputs = torch.zeros(shape, dtype=self.model.cfg.dtype, device=like.device)
            if kind == "zero-token":
                kept = self.positional_part(like, mask)
                outputs = outputs.expand(kept.shape[0], -1, -1, -1).clone()
                outputs[:, :, 0] = kept
            return AblatedRun(kind, outputs, mask)
        raise ValueError(f"unknown ablation kind {kind!r}; valid choices: {', '.join(ABLATION_KINDS)}")

    @torch.no_grad()
    def positional_part(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """What the `input` node writes with the token embedding zeroed: the positional
        embedding where it is added to the residual stream (offset by left padding), else zero.
        `[1, pos, d_model]` when every example has the same, else `[batch, pos, d_model]`."""
        zero_tokens = [("hook_embed", lambda x, hook: torch.zeros_like(x))]
        kwargs = forward_kwargs(self.model, tokens, attention_mask)
        kept = self.model.run_with_hooks(tokens, stop_at_layer=0, fwd_hooks=zero_tokens, **kwargs)
        return kept[:1] if bool((kept == kept[:1]).all()) else kept

    def head_outputs(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """Each head's write to the residual stream, `[..., pos, head, d_model]` from z
        `[..., pos, head, d_head]` (no b_O). With a post-attention RMSNorm (Gemma-2) a head
        writes its share of the normalised sum: `w * (z_h W_O) / scale`, where `scale` is the
        norm's RMS of all heads' sum in this same forward; the shares add up to the block's
        attention output exactly."""
        attn = self.model.blocks[layer].attn
        # The 4-d case keeps the exact contraction the existing scores were computed with.
        spec = "bphe,hed->bphd" if z.dim() == 4 else "...he,hed->...hd"
        out = torch.einsum(spec, z, attn.W_O)
        if not self.model.cfg.use_normalization_before_and_after:
            return out
        return post_norm_head_writes(self.model.blocks[layer].ln1_post, out)

    # --- the masked forward ------------------------------------------------------------------

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, ablated: AblatedRun, *, path: ForwardPath = "auto"
    ) -> torch.Tensor:
        """Logits of the model run with `mask` over the graph's edges.

        Args:
            tokens: `[batch, pos]` token ids of the run being masked (the clean input).
            mask: `[n_sources, n_destinations]` or `[n_masks, n_sources, n_destinations]`,
                values in [0, 1]; only cells of `graph.real_edge_mask` are read.
            ablated: from `ablate`, with batch 1 or the same batch as `tokens`; its
                attention mask is the padding of `tokens`.
            path: how inputs are rebuilt. "dense" mixes every source into every destination
                with its mask value (any mask, differentiable in it); "sparse" reads the
                model's own residual stream less the removed edges' deltas (masks of 0 and
                1 that need no gradient); "auto" takes "sparse" where it runs and no mask
                removes more than `SPARSE_MAX_REMOVED` of the edges (or one edge), else
                "dense". Both give the same logits up to summation order.

        Returns:
            `[batch, pos, d_vocab_out]`, or `[n_masks, batch, pos, d_vocab_out]` for a stack.

        Raises:
            ValueError: `path="sparse"` with a mask that is not 0/1 or that requires grad.
        """
        if path not in FORWARD_PATHS:
            raise ValueError(f"unknown path {path!r}; valid choices: {', '.join(FORWARD_PATHS)}")
        single = mask.dim() == 2
        masks = mask[None] if single else mask
        n_masks, batch = masks.shape[0], tokens.shape[0]
        masks = masks.to(self.model.cfg.dtype)
        limit = SPARSE_MAX_REMOVED if path == "auto" else None
        removed = None if path == "dense" else removed_edges(self.graph, masks, limit)
        if path == "sparse" and removed is None:
            raise ValueError("path 'sparse' needs masks of only 0 and 1 on the graph's edges that do not require grad")
        if removed is None:
            hooks: _MaskHooks | SparseMaskHooks = _MaskHooks(self, masks, ablated, batch)
        else:
            hooks = SparseMaskHooks(self, removed, ablated, n_masks, batch)
        stacked = tokens.repeat(n_masks, 1) if n_masks > 1 else tokens
        padding = ablated.attention_mask
        if padding is not None and n_masks > 1:
            padding = padding.repeat(n_masks, 1)
        with self._hooked(padding, hooks.fwd_hooks()):
            logits = self._call(stacked, padding)
        logits = logits.view(n_masks, batch, *logits.shape[1:])
        return logits[0] if single else logits

    def ablated_input(self, ablated: AblatedRun, dst: int) -> torch.Tensor:
        """What destination `dst` reads when every edge into it is 0: its upstream sources'
        ablated outputs plus the attention output biases before it, `[batch or 1, pos, d_model]`.
        With mask m it reads this plus `sum_u m_u,dst * delta_u`."""
        n_up = int(self.graph.n_upstream[dst])
        return ablated.cumulative[:, :, n_up - 1] + self._bias_through[self._bias_layer[dst]]

    # --- gradient attribution (EAP and its integrated variants) -------------------------------

    @torch.no_grad()
    def deltas(self, tokens: torch.Tensor, ablated: AblatedRun) -> torch.Tensor:
        """`out_u(tokens) - ablated_out_u` per source, flattened: `[n_sources, batch * pos * d_model]`."""
        recorded: dict[str, torch.Tensor] = {}
        mask = padding_mask(ablated.attention_mask)
        with self._hooked(mask, self._source_recorders(recorded)):
            self._call(tokens, mask)
        return self._deltas_from(recorded, ablated)

    @torch.no_grad()
    def _deltas_from(self, cache: dict[str, torch.Tensor], ablated: AblatedRun) -> torch.Tensor:
        """`deltas` from what `_source_recorders` stored, written group by group straight into
        their `[n_sources, batch * pos * d_model]` layout (no full-size temporaries, as this
        may run while a forward's activations are held for its backward)."""
        first = cache["blocks.0.hook_resid_pre"]
        batch, pos, d_model = first.shape
        out = torch.empty(self.graph.n_sources, batch, pos, d_model, dtype=first.dtype, device=first.device)
        abl = ablated.outputs.permute(2, 0, 1, 3)  # [n_sources, batch or 1, pos, d_model]
        torch.sub(first, abl[0], out=out[0])
        start = 1
        for layer in range(self._n_layers):
            heads = self.head_outputs(layer, cache[f"blocks.{layer}.attn.hook_z"]).permute(2, 0, 1, 3)
            stop = start + heads.shape[0]
            torch.sub(heads, abl[start:stop], out=out[start:stop])
            start = stop
            if layer in self.graph.mlp_src:
                torch.sub(cache[f"blocks.{layer}.hook_mlp_out"], abl[start], out=out[start])
                start += 1
        return out.view(self.graph.n_sources, -1)

    @torch.no_grad()
    def input_embedding(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """What the `input` node writes for `tokens`: `[batch, pos, d_model]`; only the
        embedding runs (no block), as it is all the `input` node reads."""
        mask = padding_mask(attention_mask)
        return self.model(tokens, stop_at_layer=0, **forward_kwargs(self.model, tokens, mask))

    def forward_from_embedding(
        self, tokens: torch.Tensor, embedding: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits when the `input` node writes `embedding` instead of the tokens' embedding
        (differentiable in `embedding`; used to build integration paths)."""

        def start(x: torch.Tensor, hook: object) -> torch.Tensor:
            return embedding.expand_as(x)

        mask = padding_mask(attention_mask)
        with self._hooked(mask, [("blocks.0.hook_resid_pre", start)]):
            return self._call(tokens, mask)

    def edge_gradients(
        self,
        tokens: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        deltas: torch.Tensor,
        embedding: torch.Tensor | None = None,
        scaled_sources: tuple[slice, float] | None = None,
        freeze_scaled: bool = False,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`deltas_u . d objective / d input_v` for every edge, from one forward and one backward.

        With `deltas` from `self.deltas(tokens, ablated)` and no `embedding`, this is the
        gradient of the objective with respect to the edge mask at m = 1 (EAP). With
        `embedding`, the forward starts from that input embedding instead (points on an
        integration path), while `deltas` stay fixed. With `scaled_sources = (group, a)`,
        the sources of `group` (one of `graph.source_groups`) write ablated + a * (out -
        ablated): the masked forward whose edges out of `group` are all a and every other
        edge 1, so the rows of `group` are the mask gradient there (a plain forward with
        one hook, instead of the masked runtime's). With `freeze_scaled`, that write is a
        constant: no gradient flows back through the group, so its own inputs score 0 (the
        EAP-IG library's activation rule). `attention_mask` is the padding of `tokens` (the
        one `deltas` were computed with).

        Returns:
            `[n_sources, n_destinations]` scores (zero outside `graph.real_edge_mask`).
        """
        extra = []
        if scaled_sources is not None:
            extra.append(self._scaling_hook(*scaled_sources, deltas, tokens.shape[0], freeze_scaled))
        return self.edge_and_input_gradients(
            tokens, objective, deltas, embedding, extra_hooks=extra, attention_mask=attention_mask
        )[0]

    def clean_edge_gradients(
        self,
        tokens: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        ablated: AblatedRun,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`edge_gradients(tokens, objective, self.deltas(tokens, ablated))` without the
        separate clean forward: the gradient forward is itself the clean run, so it records
        the sources' outputs, and the deltas are formed from them before the backward reads
        them (one forward and one backward in all; EAP's floor besides the ablated run).
        `attention_mask` is the padding of `tokens` (None: no padding)."""
        recorded: dict[str, torch.Tensor] = {}

        def deltas() -> torch.Tensor:
            return self._deltas_from(recorded, ablated)

        return self.edge_and_input_gradients(
            tokens, objective, deltas, extra_hooks=self._source_recorders(recorded), attention_mask=attention_mask
        )[0]

    def node_gradients(
        self,
        tokens: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        ablated: AblatedRun,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per example, the gradient of its objective with respect to a gate on each source's
        write, at gate 1: source u of example x writes ablated_u + g[x, u] (out_u - ablated_u).

        A node's gate scales all its out-edges at once, so its gradient is the sum of its
        edges' mask gradients (`edge_gradients` summed over destinations); a gate per example
        keeps per-example gradients (for scores such as HISP's mean |gradient|) from one
        backward, since examples do not interact in a forward.

        Args:
            objective: logits `[batch, pos, vocab]` -> one value per example, `[batch]`.
            attention_mask: the padding of `tokens` (None: no padding).

        Returns:
            `[batch, n_sources]`, columns in `graph.sources` order.
        """
        graph, batch = self.graph, tokens.shape[0]
        abl = ablated.outputs
        gates = torch.ones(batch, graph.n_sources, dtype=abl.dtype, requires_grad=True)
        z: dict[int, torch.Tensor] = {}

        def gated(group: slice, out: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
            def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
                delta = out(x) - abl[:, :, group]  # [batch, pos, n, d_model]
                return x + torch.einsum("bn,bpnd->bpd", gates[:, group] - 1, delta)

            return hook

        def keep_z(layer: int) -> Callable:
            def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
                z[layer] = x
                return x

            return hook

        hooks = [("blocks.0.hook_resid_pre", gated(slice(0, 1), lambda x: x[:, :, None]))]
        for layer in range(self._n_layers):
            hooks.append((f"blocks.{layer}.attn.hook_z", keep_z(layer)))
            heads = gated(graph.layer_head_src[layer], lambda x, layer=layer: self.head_outputs(layer, z[layer]))
            hooks.append((f"blocks.{layer}.hook_attn_out", heads))
            if layer in graph.mlp_src:
                mlp = graph.mlp_src[layer]
                hooks.append((f"blocks.{layer}.hook_mlp_out", gated(slice(mlp, mlp + 1), lambda x: x[:, :, None])))
        mask = padding_mask(attention_mask)
        with torch.enable_grad(), self._hooked(mask, hooks):
            objective(self._call(tokens, mask)).sum().backward()
        return gates.grad

    def _scaling_hook(
        self, group: slice, scale: float, deltas: torch.Tensor, batch: int, freeze: bool = False
    ) -> tuple[str, Callable]:
        """A hook on the residual-stream write of `group` taking (1 - scale) of its deltas away
        (and, with `freeze`, detaching the result)."""
        graph = self.graph
        if group == slice(0, 1):
            name = "blocks.0.hook_resid_pre"
        elif group in graph.layer_head_src:
            name = f"blocks.{graph.layer_head_src.index(group)}.hook_attn_out"
        elif group.stop == group.start + 1 and group.start in graph.mlp_src.values():
            layer = next(layer for layer, src in graph.mlp_src.items() if src == group.start)
            name = f"blocks.{layer}.hook_mlp_out"
        else:
            raise ValueError(f"sources {group} are not one of the graph's source groups {graph.source_groups}")
        shift = (1 - scale) * deltas[group].view(group.stop - group.start, batch, -1, self.model.cfg.d_model).sum(0)
        if freeze:
            return name, lambda x, hook: (x - shift).detach()
        return name, lambda x, hook: x - shift

    def edge_and_input_gradients(
        self,
        tokens: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        deltas: torch.Tensor | Callable[[], torch.Tensor],
        embedding: torch.Tensor | None = None,
        input_objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
        extra_hooks: list[tuple[str, Callable]] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`edge_gradients`, and from the same forward the gradient of `input_objective` (of
        the logits) with respect to the input embedding: a path method that steps along one
        objective and attributes another saves a forward per point.

        `deltas` may be a function giving them, called once after the forward (so the
        forward can record what they are made of).

        Returns:
            The edge scores, and `[batch, pos, d_model]` (None without `input_objective`).
        """
        hooks = _GradientHooks(self, deltas, tokens.shape[0])
        input_grad = None
        # The extra hooks run after the gradient hooks on a shared hook point (the input).
        fwd_hooks = hooks.fwd_hooks(embedding) + (extra_hooks or [])
        mask = padding_mask(attention_mask)
        with torch.enable_grad(), self._hooked(mask, fwd_hooks):
            logits = self._call(tokens, mask)
            if input_objective is not None:
                hooks.scoring = False  # this backward must not add to the edge scores
                (input_grad,) = torch.autograd.grad(input_objective(logits), hooks.start, retain_graph=True)
                hooks.scoring = True
            objective(logits).backward()
        return hooks.scores, input_grad


def _widen(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits as float32 (a no-op for float32 and float64 models)."""
    return logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits


def post_norm_head_writes(norm: torch.nn.Module, per_head: torch.Tensor) -> torch.Tensor:
    """Split an RMSNorm applied to the sum over heads (dim -2) into per-head writes that sum to
    it: each head's output divided by the sum's RMS (computed as TransformerLens's RMSNorm does,
    in float32) times the norm's weight."""
    wide = per_head if per_head.dtype in (torch.float32, torch.float64) else per_head.float()
    total = wide.sum(-2, keepdim=True)
    scale = (total.pow(2).mean(-1, keepdim=True) + norm.eps).sqrt()
    return (wide / scale).to(per_head.dtype) * norm.w


class _PrefixMix(torch.autograd.Function):
    """`mask @ deltas` over the written prefix of the append-only delta buffer.

    Autograd's own bmm would save the buffer view and then refuse to backpropagate because
    later sources are written into the same buffer. The prefix this op reads is never
    written again during the forward, so keeping a plain reference to it is safe.
    """

    @staticmethod
    def forward(ctx, mask: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        # Detached views: the values are all backward needs, and holding the graph-attached
        # tensors on ctx would make a reference cycle that leaks every step's graph.
        ctx.mask, ctx.deltas = mask.detach(), deltas.detach()
        return torch.bmm(mask, deltas)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        grad_mask = torch.bmm(grad, ctx.deltas.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        grad_deltas = torch.bmm(ctx.mask.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        return grad_mask, grad_deltas


class _MaskHooks:
    """Per-call state of one masked forward: what each source wrote, minus its ablated output.

    Deltas go into one append-only buffer `[n_masks, batch, n_sources, pos * d_model]`, so
    rebuilding a layer's inputs is a single batched matmul (one per mask and example) of
    the mask with the buffer's written prefix, whose result is already in the layout the
    model reads (`[mask * batch, pos, destination, d_model]`, as a view): no
    concatenation or transposition of the (large) deltas.
    """

    def __init__(self, runtime: MaskedRuntime, masks: torch.Tensor, ablated: AblatedRun, batch: int):
        self.rt = runtime
        self.graph = runtime.graph
        self.masks = masks  # [M, S, Dst]
        self.n_masks = masks.shape[0]
        self.batch = batch
        self.ablated = ablated
        _, self.pos, n_sources, self.d_model = ablated.outputs.shape
        self.buffer = torch.empty(self.n_masks, batch, n_sources, self.pos * self.d_model, dtype=masks.dtype)
        self.n_written = 0
        self.head_inputs: dict[int, torch.Tensor] = {}

    def _record(self, out: torch.Tensor) -> None:
        """Store out - ablated_out for the next sources; `out` is `[M, B, n, P, D]`."""
        start, n = self.n_written, out.shape[2]
        abl = self.ablated.outputs[:, :, start : start + n].transpose(1, 2)  # [B', n, P, D]
        self.buffer[:, :, start : start + n] = (out - abl).flatten(3)
        self.n_written += n

    def _inputs(self, dst: slice) -> torch.Tensor:
        """Rebuilt inputs `[M * B, P, V, D]` for destinations `dst` (which share their upstream)."""
        n_up = int(self.graph.n_upstream[dst.start])
        assert self.n_written >= n_up, f"hook order broke: {self.n_written} sources written, {n_up} needed"
        n_masks, batch, n_dst = self.n_masks, self.batch, dst.stop - dst.start
        m = self.masks[:, :n_up, dst].transpose(1, 2)  # [M, V, n_up]
        m = m[:, None].expand(n_masks, batch, n_dst, n_up).reshape(n_masks * batch, n_dst, n_up)
        deltas = self.buffer.view(n_masks * batch, *self.buffer.shape[2:])[:, :n_up]  # [M*B, n_up, P*D]
        patched = _PrefixMix.apply(m, deltas).view(n_masks, batch, n_dst, self.pos, self.d_model)
        ablated_in = self.rt.ablated_input(self.ablated, dst.start)  # [B', P, D], shared by the slice
        rebuilt = patched + ablated_in[None, :, None]
        return rebuilt.permute(0, 1, 3, 2, 4).reshape(n_masks * batch, self.pos, n_dst, self.d_model)

    def _per_mask(self, x: torch.Tensor) -> torch.Tensor:
        """`[M * B, P, D]` -> `[M, B, 1, P, D]`."""
        return x.view(self.n_masks, self.batch, 1, *x.shape[1:])

    # hook functions -------------------------------------------------------------------------

    def fwd_hooks(self) -> list[tuple[str, Callable]]:
        hooks: list[tuple[str, Callable]] = [("blocks.0.hook_resid_pre", self._record_hook)]
        n_layers = self.rt._n_layers
        for layer in range(n_layers):
            for letter_index, letter in enumerate("qkv"):
                hooks.append((f"blocks.{layer}.hook_{letter}_input", self._qkv_hook(layer, letter_index)))
            hooks.append((f"blocks.{layer}.attn.hook_z", self._heads_out(layer)))
            if layer in self.graph.mlp_src:
                hooks.append((f"blocks.{layer}.hook_mlp_in", self._mlp_in_hook(layer)))
                hooks.append((f"blocks.{layer}.hook_mlp_out", self._record_hook))
        hooks.append((f"blocks.{n_layers - 1}.hook_resid_post", self._logits_in))
        return hooks

    def _record_hook(self, out: torch.Tensor, hook: object) -> torch.Tensor:
        self._record(self._per_mask(out))
        return out

    def _qkv_hook(self, layer: int, letter_index: int) -> Callable:
        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            if layer not in self.head_inputs:
                rebuilt = self._inputs(self.graph.layer_head_dst[layer])
                self.head_inputs[layer] = rebuilt.view(*rebuilt.shape[:2], self.rt._n_heads, 3, -1)
            return self.head_inputs[layer][:, :, :, letter_index]

        return hook

    def _heads_out(self, layer: int) -> Callable:
        w_o = self.rt.model.blocks[layer].attn.W_O
        post_norm = self.rt.model.cfg.use_normalization_before_and_after

        def hook(z: torch.Tensor, hook: object) -> torch.Tensor:
            per_mask = z.view(self.n_masks, self.batch, *z.shape[1:])
            if post_norm:
                self._record(self.rt.head_outputs(layer, per_mask).transpose(2, 3))
            else:
                self._record(torch.einsum("mbphe,hed->mbhpd", per_mask, w_o))
            return z

        return hook

    def _mlp_in_hook(self, layer: int) -> Callable:
        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            dst = self.graph.mlp_dst[layer]
            return self._inputs(slice(dst, dst + 1))[:, :, 0]

        return hook

    def _logits_in(self, resid: torch.Tensor, hook: object) -> torch.Tensor:
        dst = self.graph.logits_dst
        return self._inputs(slice(dst, dst + 1))[:, :, 0]


class _GradientHooks:
    """Forward hooks that register gradient hooks on every destination input, and fold each
    incoming gradient straight into edge scores (no gradient is stored)."""

    def __init__(self, runtime: MaskedRuntime, deltas: torch.Tensor | Callable[[], torch.Tensor], batch: int) -> None:
        self.rt = runtime
        self.graph = runtime.graph
        self._deltas = deltas  # [S, B*P*D], or a function giving them (called at the first use)
        self._scores: torch.Tensor | None = None
        self.scoring = True  # off while a backward runs for another objective
        self.start: torch.Tensor | None = None  # the input embedding leaf of the forward

    @property
    def deltas(self) -> torch.Tensor:
        if callable(self._deltas):
            self._deltas = self._deltas()
        return self._deltas

    @property
    def scores(self) -> torch.Tensor:
        if self._scores is None:
            # Scores accumulate in at least float32 (bf16 sums lose digits fast); float64 stays.
            dtype = self.deltas.dtype
            wide = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
            self._scores = torch.zeros(self.graph.n_sources, self.graph.n_destinations, dtype=wide)
        return self._scores

    def _accumulate(self, first_dst: int, columns: torch.Tensor | None = None) -> Callable:
        n_up = int(self.graph.n_upstream[first_dst])

        def on_grad(grad: torch.Tensor) -> None:
            if not self.scoring:
                return
            wide = self.scores.dtype  # read at the backward: the deltas may come from this very forward
            with torch.no_grad():
                if grad.dim() == 4:  # per-head inputs [B, P, H, D] -> [H, B*P*D]
                    flat = grad.permute(2, 0, 1, 3).reshape(grad.shape[2], -1)
                    self.scores[:n_up, columns] += (self.deltas[:n_up] @ flat.T.to(self.deltas.dtype)).to(wide)
                else:
                    flat = grad.reshape(-1).to(self.deltas.dtype)
                    self.scores[:n_up, first_dst] += (self.deltas[:n_up] @ flat).to(wide)

        return on_grad

    def _watch(self, first_dst: int, columns: torch.Tensor | None = None) -> Callable:
        on_grad = self._accumulate(first_dst, columns)

        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            if not x.requires_grad:  # it reads only constants (a frozen input); its gradient still counts
                x = x.detach().requires_grad_(True)
            x.register_hook(on_grad)
            return x

        return hook

    def fwd_hooks(self, embedding: torch.Tensor | None) -> list[tuple[str, Callable]]:
        def start(x: torch.Tensor, hook: object) -> torch.Tensor:
            source = x if embedding is None else embedding.expand_as(x)
            self.start = source.detach().clone().requires_grad_(True)
            return self.start

        hooks: list[tuple[str, Callable]] = [("blocks.0.hook_resid_pre", start)]
        n_heads = self.rt._n_heads
        for layer in range(self.rt._n_layers):
            first = self.graph.layer_head_dst[layer].start
            for letter_index, letter in enumerate("qkv"):
                columns = first + 3 * torch.arange(n_heads) + letter_index
                hooks.append((f"blocks.{layer}.hook_{letter}_input", self._watch(first, columns)))
            if layer in self.graph.mlp_dst:
                hooks.append((f"blocks.{layer}.hook_mlp_in", self._watch(self.graph.mlp_dst[layer])))
        last = f"blocks.{self.rt._n_layers - 1}.hook_resid_post"
        hooks.append((last, self._watch(self.graph.logits_dst)))
        return hooks
