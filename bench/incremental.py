"""Incremental masked forwards: circuits that differ from a known circuit in a few edges.

ACDC evaluates thousands of circuits, each the current circuit C minus an edge (or a few,
when it speculates). Under C every destination reads a known input and every source
writes a known output (a `CircuitState`). Taking edges away from destinations of one layer
changes those inputs only, and the change reaches a later node only through an edge that
C keeps. So `IncrementalRuntime.evaluate` rebuilds the changed inputs, recomputes the nodes
they feed, then the nodes those feed through C's edges, and so on to the logits; every
other node's output is C's, read from the state. Where the objective reads only the
task's output positions (the KL), the last layer's MLP and the unembedding run at those
positions only (the last layer's attention still reads every position's keys and values).

The semantics are the masked runtime's (`bench.runtime`): destination v reads
`ablated_input_v + sum_u m_uv * delta_u`, with delta_u what source u writes minus its
ablated output. Nodes are computed with the model's own TransformerLens modules (ln1 and
attention, ln2 and MLP, ln_final and unembed), as its blocks call them. A padded input (the
ablated run's attention mask, left or right) reaches attention as the model's forward
passes it, with padded keys masked in bidirectional models too (`bench.padding`).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformer_lens.utilities.activation_functions import apply_softcap

from bench.padding import additive_key_mask, masks_keys_itself
from bench.runtime import AblatedRun, MaskedRuntime
from bench.task_data import select_positions

PER_HEAD_PARAMETERS = frozenset({"W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "sinks"})
# Above this, states do not cache destination inputs: ACDC's tau grid can hold a state per
# tau, and GPT-2 small's inputs on IOI's 100 prompts (about 2,000 tokens) are 2.7 GB a state.
INPUT_CACHE_BYTES = 256e6
# Head-subset views of attention modules kept for reuse, least recently used dropped first:
# each holds a copy of its heads' weights (GPT-2 small: up to 9 MB).
SUBSET_CACHE_BYTES = 32e6


@dataclass(frozen=True)
class CircuitState:
    """A circuit and what it computes on the run's input.

    Attributes:
        kept: `[n_edges]` bool.
        inputs: per destination, its input `[batch, pos, d_model]` (at the output positions
            only, `[batch, k, d_model]`, for the last MLP and the logits when positions are
            restricted); None where the runtime does not cache inputs (rebuilt from `deltas`).
        deltas: per source, its output minus its ablated output (the last layer's sources
            at the output positions only, when restricted).
        value: the objective of this circuit.

    Entries of a node that no kept edge reads are not kept up to date (they are never read).
    """

    kept: torch.Tensor
    inputs: tuple[torch.Tensor | None, ...]
    deltas: tuple[torch.Tensor, ...]
    value: float

    def without_unread(self, edges: torch.Tensor) -> CircuitState:
        """This state minus `edges` into nodes whose outputs no kept edge reads (nothing changes)."""
        kept = self.kept.clone()
        kept[edges] = False
        return CircuitState(kept, self.inputs, self.deltas, self.value)


@dataclass(frozen=True)
class Evaluation:
    """Objectives of a stack of circuits, and what each computes where it differs from `base`."""

    base: CircuitState
    masks: torch.Tensor  # [R, n_edges] bool
    values: list[float]
    inputs: dict[int, torch.Tensor]  # destination -> [R, batch, pos, d_model]
    deltas: dict[int, torch.Tensor]  # source -> [R, batch, pos, d_model]
    work: int = 0  # per circuit: nodes computed (heads, MLPs, the unembedding) x tokens

    def state(self, row: int) -> CircuitState:
        """The state of circuit `row`, sharing every unchanged entry with `base` (a copy of
        its own rows, so that a state never keeps a whole stack of circuits alive)."""
        inputs, deltas = list(self.base.inputs), list(self.base.deltas)
        single = len(self.masks) == 1
        for dst, rows in self.inputs.items():
            inputs[dst] = rows[row] if single else rows[row].clone()
        for src, rows in self.deltas.items():
            deltas[src] = rows[row] if single else rows[row].clone()
        return CircuitState(self.masks[row], tuple(inputs), tuple(deltas), self.values[row])


class IncrementalRuntime:
    """Evaluates circuits near a known one on one input, recomputing only what changes.

    Args:
        runtime: the masked runtime (model and graph).
        tokens: `[batch, pos]` the input the circuits run on.
        ablated: what a removed edge falls back to; its attention mask is the padding of `tokens`.
        objective: logits -> `[n_circuits]`; it gets `[n, batch, k, vocab]` logits at
            `positions` when they are given, else `[n, batch, pos, vocab]`.
        positions: the only positions `objective` reads (`TaskData.output_positions`), or
            None for all.
        cache_inputs: keep every destination's input in each state (faster) or rebuild the
            touched ones from the sources' outputs (a state is then about a third the size,
            for GPT-2 small); None: cache while one state's inputs fit `INPUT_CACHE_BYTES`.
    """

    def __init__(
        self,
        runtime: MaskedRuntime,
        tokens: torch.Tensor,
        ablated: AblatedRun,
        objective: Callable[[torch.Tensor], torch.Tensor],
        positions: slice | torch.Tensor | None = None,
        cache_inputs: bool | None = None,
    ) -> None:
        model = runtime.model
        self.runtime, self.model, self.graph = runtime, model, runtime.graph
        self.objective, self.positions = objective, positions
        graph, cfg = self.graph, model.cfg
        self.batch, self.pos = tokens.shape
        self.dtype = cfg.dtype
        last = cfg.n_layers - 1
        # Nodes computed at the output positions only: the last MLP's input and the logits
        # read by destination, and the last layer's heads and MLP by source.
        self.short_dst = set() if positions is None else {graph.logits_dst, graph.mlp_dst.get(last, -1)}
        short_src = set(range(graph.layer_head_src[last].start, graph.layer_head_src[last].stop))
        self.short_src = set() if positions is None else short_src | {graph.mlp_src.get(last, -1)}
        with torch.no_grad():
            clean = runtime.deltas(tokens, ablated).view(graph.n_sources, self.batch, self.pos, -1)
            self.clean = {False: clean, True: self._take(clean) if positions is not None else clean}
            outputs = ablated.outputs.expand(self.batch, -1, -1, -1).transpose(1, 2).transpose(0, 1)  # [S, B, P, D]
            self.ablated_out = [
                self._take(outputs[s]) if s in self.short_src else outputs[s] for s in range(graph.n_sources)
            ]
            self.ablated_in = []
            for dst in range(graph.n_destinations):
                base = runtime.ablated_input(ablated, dst).expand(self.batch, -1, -1)
                self.ablated_in.append(self._take(base) if dst in self.short_dst else base)
            self.padding = ablated.attention_mask
            shortformer = cfg.positional_embedding_type == "shortformer"
            self.shortformer = model.pos_embed(tokens, 0, self.padding) if shortformer else None
        self._padding_cache: dict[int, dict[str, torch.Tensor]] = {}
        # Computing only the touched heads of a layer needs attention whose heads are computed
        # independently and whose code reads n_heads only to shape the output (ALiBi and
        # relative position biases, QK-norm over all heads, or 4-bit weights do not qualify).
        attn = model.blocks[0].attn
        self.head_subsets = (
            cfg.positional_embedding_type in ("standard", "shortformer", "rotary")
            and not cfg.load_in_4bit
            and set(attn._parameters) <= PER_HEAD_PARAMETERS | {"b_O"}
            and getattr(attn, "q_norm", None) is None
            and not cfg.use_normalization_before_and_after  # a post-norm mixes every head's write
        )
        self._subsets: OrderedDict[tuple[int, tuple[int, ...]], torch.nn.Module] = OrderedDict()
        self._subset_bytes = 0
        input_bytes = graph.n_destinations * tokens.numel() * cfg.d_model * torch.finfo(cfg.dtype).bits // 8
        self.cache_inputs = input_bytes <= INPUT_CACHE_BYTES if cache_inputs is None else cache_inputs

    # --- positions ---------------------------------------------------------------------------

    def _take(self, x: torch.Tensor) -> torch.Tensor:
        """`x[..., batch, pos, d]` at the output positions: `[..., batch, k, d]`."""
        assert self.positions is not None
        return select_positions(x, self.positions)

    # --- states ------------------------------------------------------------------------------

    def initial(self) -> CircuitState:
        """The full circuit: every destination reads what it reads in the plain forward."""
        graph = self.graph
        with torch.no_grad():
            upstream = self.clean[False].cumsum(0)

            def plain_input(dst: int) -> torch.Tensor:
                total = upstream[int(graph.n_upstream[dst]) - 1]
                return self.ablated_in[dst] + (self._take(total) if dst in self.short_dst else total)

            if self.cache_inputs:
                inputs = tuple(plain_input(dst) for dst in range(graph.n_destinations))
            else:
                inputs = (None,) * graph.n_destinations
            deltas = tuple(self._take(d) if s in self.short_src else d for s, d in enumerate(self.clean[False]))
            value = float(self.objective(self._logits(plain_input(graph.logits_dst)[None]))[0])
        return CircuitState(torch.ones(graph.n_edges, dtype=torch.bool), inputs, deltas, value)

    # --- evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, state: CircuitState, masks: torch.Tensor, layer: int) -> Evaluation:
        """Objectives of the circuits `masks` (`[R, n_edges]` bool), which differ from
        `state.kept` only in edges into destinations whose node is in `layer` (or the
        logits); every node before `layer` then computes what it does under `state`."""
        graph = self.graph
        m = graph.to_matrix(masks.to(self.dtype))  # [R, S, Dst]
        diff = m - graph.to_matrix(state.kept.to(self.dtype))
        changed: dict[int, torch.Tensor] = {}  # source -> [R, B, P, D], its delta minus the state's
        inputs: dict[int, torch.Tensor] = {}
        deltas: dict[int, torch.Tensor] = {}
        reached = diff.ne(0).any(0).any(0)  # [Dst]: destinations whose input differs from the state's

        def record(src: int, delta: torch.Tensor) -> None:
            deltas[src] = delta
            changed[src] = delta - state.deltas[src]
            reached.logical_or_(m[:, src].ne(0).any(0))

        work = 0

        def touched(dsts: range) -> list[int]:
            return [d for d, hit in zip(dsts, reached[dsts.start : dsts.stop].tolist(), strict=True) if hit]

        for block in range(layer, graph.spec.n_layers):
            heads = touched(range(graph.layer_head_dst[block].start, graph.layer_head_dst[block].stop))
            if heads:
                work += len(self._computed_heads(block, heads)) * self.batch * self.pos
                for src, delta in self._heads(block, state, heads, diff, m, changed, inputs).items():
                    record(src, delta)
            dst = graph.mlp_dst.get(block)
            if dst is not None and reached[dst]:
                x = inputs[dst] = self._column_inputs(state, [dst], diff, m, changed)[:, 0]
                mlp = self.model.blocks[block]
                out = mlp.apply_mlp(mlp.ln2(x.flatten(0, 1))).view_as(x)
                record(graph.mlp_src[block], out - self.ablated_out[graph.mlp_src[block]])
                work += x.shape[1] * x.shape[2]
        if reached[graph.logits_dst]:
            x = inputs[graph.logits_dst] = self._column_inputs(state, [graph.logits_dst], diff, m, changed)[:, 0]
            values = self.objective(self._logits(x)).double().tolist()
            work += x.shape[1] * x.shape[2]
        else:  # nothing that changed reaches the logits
            values = [state.value] * len(masks)
        return Evaluation(state, masks, values, inputs if self.cache_inputs else {}, deltas, work)

    def _state_input(self, state: CircuitState, dst: int) -> torch.Tensor:
        """What `dst` reads under `state`: cached, or its ablated input plus the kept sources' deltas."""
        cached = state.inputs[dst]
        if cached is not None:
            return cached
        short = dst in self.short_dst
        total = self.ablated_in[dst].clone()
        for src in self.graph.edge_src[state.kept & (self.graph.edge_dst == dst)].tolist():
            delta = state.deltas[src]
            total += self._take(delta) if short and src not in self.short_src else delta
        return total

    def _column_inputs(
        self, state: CircuitState, dsts: list[int], diff: torch.Tensor, m: torch.Tensor, changed: dict
    ) -> torch.Tensor:
        """Inputs `[R, len(dsts), B, P, D]` of `dsts` (which share their position restriction):
        the state's, plus the edges taken away (their sources are upstream of the changed
        layer, so write what they write in the plain run) and the changed sources' changes."""
        short = dsts[0] in self.short_dst
        base = torch.stack([self._state_input(state, d) for d in dsts])
        n_rows, shape = len(m), base.shape
        total = base.expand(n_rows, *shape)
        removed = diff[:, :, dsts]  # [R, S, n]
        sources = torch.nonzero(removed.ne(0).any(0).any(-1)).flatten()
        if len(sources):  # [R, n, s] @ [s, B * P * D]
            clean = self.clean[short][sources].flatten(1)
            total = total + (removed[:, sources].transpose(1, 2) @ clean).view(n_rows, *shape)
        weights = m[:, list(changed)][:, :, dsts]  # [R, c, n]
        reading = [u for u, hit in zip(changed, weights.ne(0).any(0).any(-1).tolist(), strict=True) if hit]
        if reading:  # [R, n, c] @ [R, c, B * P * D]
            parts = [self._take(changed[u]) if short and u not in self.short_src else changed[u] for u in reading]
            stacked = torch.stack(parts, 1).flatten(2)
            read = weights[:, [list(changed).index(u) for u in reading]].transpose(1, 2)
            total = total + torch.bmm(read, stacked).view(n_rows, *shape)
        return total

    def _heads(
        self,
        layer: int,
        state: CircuitState,
        touched: list[int],
        diff: torch.Tensor,
        m: torch.Tensor,
        changed: dict,
        inputs: dict[int, torch.Tensor],
    ) -> dict[int, torch.Tensor]:
        """New deltas `{source: [R, B, P, D]}` of the heads of `layer` with a touched input."""
        graph = self.graph
        first = graph.layer_head_dst[layer].start
        computed = self._computed_heads(layer, touched)
        # After a post-attention norm every head's write depends on every head (the norm's scale).
        post_norm = self.model.cfg.use_normalization_before_and_after
        heads = computed if post_norm else sorted({(dst - first) // 3 for dst in touched})
        n_rows, n_computed = m.shape[0], len(computed)
        dsts = [first + 3 * head + letter for head in computed for letter in range(3)]
        rebuilt = self._column_inputs(state, touched, diff, m, changed)  # [R, n, B, P, D]
        for i, dst in enumerate(touched):
            inputs[dst] = rebuilt[:, i]
        # ln1 acts on each vector alone, so the inputs every circuit shares (the state's) are
        # normalised once and only the rebuilt ones per circuit.
        ln1 = self.model.blocks[layer].ln1
        shared = ln1(torch.stack([self._state_input(state, d) for d in dsts]))  # [h * 3, B, P, D]
        columns = shared.expand(n_rows, -1, -1, -1, -1).clone()
        columns[:, [dsts.index(d) for d in touched]] = ln1(rebuilt)
        # [R, h * 3, B, P, D] -> normalised q, k, v inputs [R * B, P, h, D]
        grouped = columns.view(n_rows, n_computed, 3, self.batch, self.pos, -1)
        q, k, v = grouped.permute(2, 0, 3, 4, 1, 5).flatten(1, 2)
        z = self._attention(layer, tuple(computed), q, k, v).view(n_rows, self.batch, self.pos, n_computed, -1)
        src0 = graph.layer_head_src[layer].start
        z = z[:, :, :, [computed.index(head) for head in heads]]
        if src0 in self.short_src:  # the last layer: its heads' writes matter at the output positions only
            z = self._take(z.flatten(3)).view(*z.shape[:2], -1, *z.shape[3:])
        if post_norm:
            out = self.runtime.head_outputs(layer, z).permute(3, 0, 1, 2, 4)
        else:
            out = torch.einsum("rbphe,hed->hrbpd", z, self.model.blocks[layer].attn.W_O[heads])
        return {src0 + head: out[i] - self.ablated_out[src0 + head] for i, head in enumerate(heads)}

    def _computed_heads(self, layer: int, touched: list[int]) -> list[int]:
        """The heads of `layer` computed for the touched destinations: their own heads, or
        every head where attention cannot run on a subset."""
        if not self.head_subsets:
            return list(range(self.model.cfg.n_heads))
        first = self.graph.layer_head_dst[layer].start
        return sorted({(dst - first) // 3 for dst in touched})

    def _attention(
        self, layer: int, heads: tuple[int, ...], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """The z `[N, P, h, d_head]` of `heads` from their q/k/v inputs `[N, P, h, D]`, already
        through ln1, as the block calls attention (the z is read at the attention's hook)."""
        block = self.model.blocks[layer]
        attention = block.attn if len(heads) == self.model.cfg.n_heads else self._subset(layer, heads)
        if self.shortformer is not None:
            n = q.shape[0] // self.batch
            extra = self.shortformer[:, :, None].expand(-1, -1, q.shape[2], -1).repeat(n, 1, 1, 1)
            q, k = q + extra, k + extra
        # A plain torch hook on the one hook point (TransformerLens's hook context resets
        # every hook point of the model on exit, which cost more than the attention here).
        # It stops the module once z is known: the output projection that follows is
        # computed per head, from z, by the caller.
        handle = block.attn.hook_z.register_forward_hook(_stop_with_z)
        try:
            attention(query_input=q, key_input=k, value_input=v, **self._padding_arguments(q.shape[0] // self.batch))
        except _ZComputed as done:
            return done.z
        finally:
            handle.remove()
        raise RuntimeError(f"layer {layer}'s attention returned without passing its hook_z")

    def _padding_arguments(self, copies: int) -> dict[str, torch.Tensor]:
        """The attention module's padding arguments for `copies` stacked copies of the input:
        the mask, as the model's forward passes it (positions, causal keys), and for
        attention the model does not mask itself, padded keys masked additively."""
        if self.padding is None:
            return {}
        if copies not in self._padding_cache:
            mask = self.padding.repeat(copies, 1)
            arguments = {"attention_mask": mask}
            if not masks_keys_itself(self.model):
                arguments["additive_attention_mask"] = additive_key_mask(mask, self.dtype)
            self._padding_cache[copies] = arguments
        return self._padding_cache[copies]

    def _subset(self, layer: int, heads: tuple[int, ...]) -> torch.nn.Module:
        """Layer `layer`'s attention restricted to `heads`: the same module (hook points,
        buffers, code) with the per-head weights sliced and `n_heads` set to match."""
        key = (layer, heads)
        if key in self._subsets:
            self._subsets.move_to_end(key)
        else:
            attn = self.model.blocks[layer].attn
            subset = copy.copy(attn)
            subset._parameters = {
                name: param[list(heads)] if name in PER_HEAD_PARAMETERS else param
                for name, param in attn._parameters.items()
            }
            subset.cfg = copy.copy(attn.cfg)
            subset.cfg.n_heads = len(heads)
            self._subsets[key] = subset
            self._subset_bytes += _weight_bytes(subset)
            while self._subset_bytes > SUBSET_CACHE_BYTES and len(self._subsets) > 1:
                self._subset_bytes -= _weight_bytes(self._subsets.popitem(last=False)[1])
        return self._subsets[key]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `[R, B, P, V]` from the logits' input `[R, B, P, D]`, as the model's last steps."""
        model, rows = self.model, x.shape[0]
        x = x.flatten(0, 1)
        if model.cfg.normalization_type is not None:
            x = model.ln_final(x)
        logits = apply_softcap(model.unembed(x), model.cfg.output_logits_soft_cap)
        return logits.view(rows, -1, *logits.shape[1:])


class _ZComputed(Exception):
    """Carries an attention module's z out of its forward, skipping the output projection."""

    def __init__(self, z: torch.Tensor) -> None:
        super().__init__()
        self.z = z


def _stop_with_z(module: torch.nn.Module, args: tuple, z: torch.Tensor) -> None:
    raise _ZComputed(z)


def _weight_bytes(module: torch.nn.Module) -> int:
    """Bytes of the sliced (per-head) weights a head-subset view owns."""
    return sum(p.numel() * p.element_size() for name, p in module._parameters.items() if name in PER_HEAD_PARAMETERS)
