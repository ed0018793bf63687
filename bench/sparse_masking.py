"""The masked forward's sparse path: masks of 0 and 1 that remove few edges, run as the
model's own forward less the removed edges' contributions.

Why it exists: `bench.runtime`'s dense rebuild makes every destination's input from every
upstream source's output with its mask value, whatever the mask, so even a mask that removes a
single edge costs well above a plain forward (1.47x on GPT-2 small's shape, README "Speed and
memory") and holds a buffer of every source's delta. Exact patching runs one such mask per
edge. With m in {0, 1} the input is instead the model's own residual stream less the removed
edges' deltas, which costs about a plain forward and keeps only the deltas of the removed
edges' sources (issue #22).

`MaskedRuntime.forward(path=...)` is the only entry point: it asks `removed_edges` whether the
masks qualify and runs `SparseMaskHooks` if so; the dense path stays in `bench.runtime`. Both
give the same logits up to summation order (`tests/test_runtime_sparse.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bench.graph import Graph
    from bench.runtime import AblatedRun, MaskedRuntime

# `MaskedRuntime.forward`'s "auto" path takes the sparse rebuild while each mask removes at most this
# fraction of the edges, or one edge (every exact-patching mask removes one, the full
# circuit none). Its correction then costs a few percent of the dense rebuild, which mixes
# every edge; the faithfulness grid's circuits (at most half the edges) stay dense.
SPARSE_MAX_REMOVED = 0.05


def removed_edges(graph: Graph, masks: torch.Tensor, limit: float | None) -> torch.Tensor | None:
    """The sparse path's work for `masks` `[M, S, Dst]`: the removed edges as `[n, 3]` rows
    (mask, source, destination), or None where it cannot run them: a mask requires grad,
    an edge's value is neither 0 nor 1, or (with `limit`) a mask removes more than `limit`
    of the graph's edges (and more than one)."""
    if masks.requires_grad:
        return None
    real = graph.real_edge_mask.to(masks.device)
    on_edges = masks[:, real]
    off = on_edges == 0
    if not bool((off | (on_edges == 1)).all()):
        return None
    if limit is not None and int(off.sum(1).max()) > max(1.0, limit * graph.n_edges):
        return None
    return torch.nonzero((masks == 0) & real)


class SparseMaskHooks:
    """Per-call state of a masked forward whose masks are 0/1 and mostly ones.

    With m in {0, 1}, destination v reads the sum of every source before it (this forward's
    outputs, and the attention output biases): the model's own residual stream, which its
    hook already receives. Only the removed edges change it:

        input_v = resid_v - sum over removed u->v of (out_u - ablated_out_u)

    so the forward costs a plain one plus the removed (mask, source, destination) triples:
    each (mask, source) pair's delta is computed once where the source writes, and each
    destination hook subtracts the deltas of its removed edges from its own mask's rows.
    Hooks sit only where a removed edge starts or ends (none for an all-ones mask).
    """

    GATHER_ROWS = 64  # deltas gathered at a time into a destination's correction

    def __init__(self, runtime: MaskedRuntime, removed: torch.Tensor, ablated: AblatedRun, n_masks: int, batch: int):
        self.rt = runtime
        self.graph = graph = runtime.graph
        self.ablated = ablated
        self.n_masks, self.batch = n_masks, batch
        device = ablated.outputs.device
        n_sources = graph.n_sources
        mask_row, src, self.dst = removed.to(device).unbind(1)
        pairs, self.pair_of = torch.unique(mask_row * n_sources + src, return_inverse=True)
        self.pair_row, self.pair_src = pairs // n_sources, pairs % n_sources
        self.row = mask_row
        _, pos, _, d_model = ablated.outputs.shape
        self.deltas = torch.empty(len(pairs), batch, pos, d_model, dtype=ablated.outputs.dtype, device=device)

    # sources ----------------------------------------------------------------------------------

    def _store(self, pairs: torch.Tensor, out: torch.Tensor) -> None:
        """Deltas of `pairs` (indices into the pair list) from their outputs `[n, B, P, D]`."""
        abl = self.ablated.outputs[:, :, self.pair_src[pairs]].permute(2, 0, 1, 3)  # [n, B', P, D]
        self.deltas[pairs] = out - abl

    def _whole_source(self, pairs: torch.Tensor) -> Callable:
        """A hook where one source writes its whole output (the input node, an MLP)."""

        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            self._store(pairs, x.view(self.n_masks, self.batch, *x.shape[1:])[self.pair_row[pairs]])
            return x

        return hook

    def _heads_out(self, layer: int, pairs: torch.Tensor) -> Callable:
        """hook_z of `layer`: each removed head's write, computed for its own mask's rows only."""
        attn = self.rt.model.blocks[layer].attn
        rows, heads = self.pair_row[pairs], self.pair_src[pairs] - self.graph.layer_head_src[layer].start

        def hook(z: torch.Tensor, hook: object) -> torch.Tensor:
            per_mask = z.view(self.n_masks, self.batch, *z.shape[1:])  # [M, B, P, H, d_head]
            if self.rt.model.cfg.use_normalization_before_and_after:
                # The post-norm's scale depends on every head of the row: split whole rows.
                used, row_of = torch.unique(rows, return_inverse=True)
                writes = self.rt.head_outputs(layer, per_mask[used])  # [r, B, P, H, D]
                out = writes[row_of, :, :, heads]
            else:
                out = torch.einsum("nbpe,ned->nbpd", per_mask[rows, :, :, heads], attn.W_O[heads])
            self._store(pairs, out)
            return z

        return hook

    # destinations -----------------------------------------------------------------------------

    def _subtract(self, removed: torch.Tensor, column: torch.Tensor) -> Callable:
        """A destination hook whose input is `[M * B, P, H, D]` (one column per head) or
        `[M * B, P, D]`: subtract the deltas of the triples `removed` from their mask's rows,
        at their head's column `column`."""
        width = self.rt._n_heads
        targets, target_of = torch.unique(self.row[removed] * width + column, return_inverse=True)
        target_rows, target_columns = targets // width, targets % width
        sources = self.pair_of[removed]

        def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
            correction = x.new_zeros(len(targets), *self.deltas.shape[1:])
            for part in torch.arange(len(removed), device=removed.device).split(self.GATHER_ROWS):
                correction.index_add_(0, target_of[part], self.deltas[sources[part]])
            out = x.clone()
            per_mask = out.view(self.n_masks, self.batch, x.shape[1], -1, x.shape[-1])  # [M, B, P, H or 1, D]
            per_mask[target_rows, :, :, target_columns] -= correction
            return out

        return hook

    def fwd_hooks(self) -> list[tuple[str, Callable]]:
        graph, dst = self.graph, self.dst
        hooks: list[tuple[str, Callable]] = []

        def source(name: str, group: slice, make: Callable[[torch.Tensor], Callable]) -> None:
            pairs = torch.nonzero((self.pair_src >= group.start) & (self.pair_src < group.stop)).flatten()
            if len(pairs):
                hooks.append((name, make(pairs)))

        def destination(name: str, selected: torch.Tensor, column: torch.Tensor) -> None:
            removed = torch.nonzero(selected).flatten()
            if len(removed):
                hooks.append((name, self._subtract(removed, column[removed])))

        first = torch.zeros_like(dst)
        source("blocks.0.hook_resid_pre", slice(0, 1), self._whole_source)
        for layer in range(self.rt._n_layers):
            heads = graph.layer_head_dst[layer]
            local = dst - heads.start  # destinations run head by head, q k v within a head
            in_layer = (dst >= heads.start) & (dst < heads.stop)
            for letter_index, letter in enumerate("qkv"):
                selected = in_layer & (local % 3 == letter_index)
                destination(f"blocks.{layer}.hook_{letter}_input", selected, local // 3)
            source(f"blocks.{layer}.attn.hook_z", graph.layer_head_src[layer], partial(self._heads_out, layer))
            if layer in graph.mlp_src:
                destination(f"blocks.{layer}.hook_mlp_in", dst == graph.mlp_dst[layer], first)
                mlp = graph.mlp_src[layer]
                source(f"blocks.{layer}.hook_mlp_out", slice(mlp, mlp + 1), self._whole_source)
        last = f"blocks.{self.rt._n_layers - 1}.hook_resid_post"
        destination(last, dst == graph.logits_dst, first)
        return hooks
