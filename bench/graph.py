"""The edge graph of a transformer: the one naming scheme for nodes, edges, masks and scores.

Sources (upstream outputs) are `input`, every head `a{L}.h{H}` and every MLP `m{L}`.
Destinations (downstream inputs) are the per-head query, key and value inputs
`a{L}.h{H}<q|k|v>`, every MLP input `m{L}` and `logits`. An edge `u->v` exists when
`u` writes to the residual stream before `v` reads it. Masks and scores are dense
`(n_sources, n_destinations)` tensors; `real_edge_mask` marks the cells that are edges.
Edges are listed destination-major, in the order the runtime visits them.

>>> g = Graph.from_spec(GraphSpec(n_layers=1, n_heads=1, mlp_layers=(True,)))
>>> g.edge_names[:5]
['input->a0.h0<q>', 'input->a0.h0<k>', 'input->a0.h0<v>', 'input->m0', 'a0.h0->m0']
>>> g.n_edges
8
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import torch

QKV = ("q", "k", "v")
_EDGE_RE = re.compile(r"^(?P<src>[^<>-]+)->(?P<dst>[^<>-]+)(?:<(?P<qkv>[qkv])>)?$")
_NODE_RE = re.compile(r"^(?:input|logits|a(?P<head_layer>\d+)\.h(?P<head>\d+)|m(?P<mlp_layer>\d+))$")


@dataclass(frozen=True)
class GraphSpec:
    """The architecture facts that decide which edges exist.

    Args:
        n_layers: number of transformer blocks.
        n_heads: attention heads per block (0 for an MLP-only block stack).
        mlp_layers: for each block, whether it has an MLP.
        parallel_attn_mlp: MLP reads the block input, not the attention output (GPT-J style).
    """

    n_layers: int
    n_heads: int
    mlp_layers: tuple[bool, ...]
    parallel_attn_mlp: bool = False

    def __post_init__(self) -> None:
        if len(self.mlp_layers) != self.n_layers:
            raise ValueError(f"mlp_layers has {len(self.mlp_layers)} entries for n_layers={self.n_layers}")
        if self.n_layers < 1 or self.n_heads < 0:
            raise ValueError(f"need n_layers >= 1 and n_heads >= 0, got {self.n_layers}, {self.n_heads}")

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> GraphSpec:
        """Read the spec off a TransformerLens HookedTransformer's config."""
        cfg = model.cfg
        return cls(
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            mlp_layers=tuple(not cfg.attn_only for _ in range(cfg.n_layers)),
            parallel_attn_mlp=bool(getattr(cfg, "parallel_attn_mlp", False)),
        )


def spec_from_edge_names(names: Iterable[str]) -> GraphSpec:
    """The architecture whose graph has these edges, read off the names alone (a result file
    records its edge names, so it can be drawn without loading its model). `Graph.from_edge_names`
    also checks that the edges are exactly that graph's.

    Raises:
        ValueError: a malformed edge or an unknown node, named with the forms that are valid.
    """
    n_layers, n_heads, mlps, same_layer_head_to_mlp = 0, 0, set(), False
    for name in names:
        match = _EDGE_RE.match(name)
        if match is None:
            raise ValueError(f"malformed edge {name!r}; expected 'SRC->DST' or 'SRC->a{{L}}.h{{H}}<q|k|v>'")
        layers = []
        for node in (match["src"], match["dst"]):
            parts = _NODE_RE.match(node)
            if parts is None:
                raise ValueError(
                    f"edge {name!r}: unknown node {node!r}; valid nodes: input, a{{L}}.h{{H}}, m{{L}}, logits"
                )
            if parts["head"] is not None:
                n_heads = max(n_heads, int(parts["head"]) + 1)
                layers.append(("head", int(parts["head_layer"])))
            elif parts["mlp_layer"] is not None:
                mlps.add(int(parts["mlp_layer"]))
                layers.append(("mlp", int(parts["mlp_layer"])))
        n_layers = max([n_layers, *(layer + 1 for _, layer in layers)])
        same_layer_head_to_mlp |= [kind for kind, _ in layers] == ["head", "mlp"] and layers[0][1] == layers[1][1]
    if n_layers == 0:
        raise ValueError("no edges between layers: a graph needs at least one head or MLP")
    parallel = bool(mlps) and n_heads > 0 and not same_layer_head_to_mlp
    return GraphSpec(n_layers, n_heads, tuple(layer in mlps for layer in range(n_layers)), parallel)


def head_name(layer: int, head: int) -> str:
    return f"a{layer}.h{head}"


def mlp_name(layer: int) -> str:
    return f"m{layer}"


class Graph:
    """Nodes, edges and their dense index for one architecture."""

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        sources: list[str] = ["input"]
        destinations: list[str] = []
        # n_upstream[d] = number of leading sources that destination d can read.
        n_upstream: list[int] = []
        self.layer_head_src: list[slice] = []
        self.layer_head_dst: list[slice] = []
        self.mlp_src: dict[int, int] = {}
        self.mlp_dst: dict[int, int] = {}
        for layer in range(spec.n_layers):
            upstream_of_layer = len(sources)
            first_dst = len(destinations)
            for head in range(spec.n_heads):
                for letter in QKV:
                    destinations.append(f"{head_name(layer, head)}<{letter}>")
                    n_upstream.append(upstream_of_layer)
            self.layer_head_dst.append(slice(first_dst, len(destinations)))
            self.layer_head_src.append(slice(len(sources), len(sources) + spec.n_heads))
            sources.extend(head_name(layer, head) for head in range(spec.n_heads))
            if spec.mlp_layers[layer]:
                self.mlp_dst[layer] = len(destinations)
                destinations.append(mlp_name(layer))
                n_upstream.append(upstream_of_layer if spec.parallel_attn_mlp else len(sources))
                self.mlp_src[layer] = len(sources)
                sources.append(mlp_name(layer))
        self.logits_dst = len(destinations)
        destinations.append("logits")
        n_upstream.append(len(sources))

        self.sources: list[str] = sources
        self.destinations: list[str] = destinations
        self.n_upstream = torch.tensor(n_upstream)
        self.src_index = {name: i for i, name in enumerate(sources)}
        self.dst_index = {name: i for i, name in enumerate(destinations)}
        self.real_edge_mask = torch.arange(len(sources))[:, None] < self.n_upstream[None, :]
        dst_idx, src_idx = torch.nonzero(self.real_edge_mask.T, as_tuple=True)
        self.edge_src = src_idx
        self.edge_dst = dst_idx

    @classmethod
    def from_spec(cls, spec: GraphSpec) -> Graph:
        return cls(spec)

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> Graph:
        return cls(GraphSpec.from_model(model))

    @classmethod
    def from_edge_names(cls, names: Iterable[str]) -> Graph:
        """The graph whose edges are exactly `names` (in any order).

        Raises:
            ValueError: a name that is not an edge of any graph, or a set of names that is not
                one graph's whole edge set (the message names an edge that is missing or extra).
        """
        names = list(names)
        graph = cls(spec_from_edge_names(names))
        given = set(names)
        missing = [name for name in graph.edge_names if name not in given]
        if missing:
            raise ValueError(f"edge {missing[0]!r} of the {graph!r} is missing ({len(missing)} missing in all)")
        for name in names:
            try:
                graph.edge_index(name)
            except ValueError as err:
                raise ValueError(f"not an edge of the {graph!r}: {err}") from None
        return graph

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def n_destinations(self) -> int:
        return len(self.destinations)

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.numel())

    @cached_property
    def edge_names(self) -> list[str]:
        return [
            f"{self.sources[s]}->{self.destinations[d]}"
            for s, d in zip(self.edge_src.tolist(), self.edge_dst.tolist(), strict=True)
        ]

    @cached_property
    def edge_position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.edge_names)}

    @cached_property
    def source_groups(self) -> list[slice]:
        """Sources in write order, grouped so that no path visits two members of a group:
        the input, each layer's heads, each MLP."""
        groups = [slice(0, 1)]
        for layer in range(self.spec.n_layers):
            groups.append(self.layer_head_src[layer])
            if layer in self.mlp_src:
                groups.append(slice(self.mlp_src[layer], self.mlp_src[layer] + 1))
        return [g for g in groups if g.stop > g.start]

    @cached_property
    def nodes(self) -> list[str]:
        """Component nodes: every source plus `logits` (q/k/v inputs belong to their head)."""
        return [*self.sources, "logits"]

    def edge_index(self, name: str) -> int:
        """Position of an edge in `edge_names`; a clear error says what is wrong with the name."""
        if name in self.edge_position:
            return self.edge_position[name]
        match = _EDGE_RE.match(name)
        if match is None:
            raise ValueError(f"malformed edge {name!r}; expected 'SRC->DST' or 'SRC->a{{L}}.h{{H}}<q|k|v>'")
        src, dst = match["src"], match["dst"] + (f"<{match['qkv']}>" if match["qkv"] else "")
        if src not in self.src_index:
            raise ValueError(f"edge {name!r}: unknown source node {src!r} in this graph")
        if dst not in self.dst_index:
            raise ValueError(f"edge {name!r}: unknown destination {dst!r} in this graph")
        raise ValueError(f"edge {name!r}: {src} is not upstream of {dst} (reads only earlier layers)")

    def destination_node(self, dst: str) -> str:
        """The component a destination belongs to: `a0.h1<q>` -> `a0.h1`."""
        return dst.split("<", 1)[0]

    def nodes_of(self, edges: list[str] | tuple[str, ...]) -> list[str]:
        """The components the named edges touch, in `nodes` order."""
        touched = {self.destination_node(part) for edge in edges for part in edge.split("->")}
        return [node for node in self.nodes if node in touched]

    # --- conversions between the flat edge order and dense matrices -------------------------

    def to_matrix(self, edge_values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Scatter `[..., n_edges]` values into `[..., n_sources, n_destinations]`."""
        shape = (*edge_values.shape[:-1], self.n_sources, self.n_destinations)
        dense = torch.full(shape, fill, dtype=edge_values.dtype, device=edge_values.device)
        dense[..., self.edge_src, self.edge_dst] = edge_values
        return dense

    def to_edges(self, matrix: torch.Tensor) -> torch.Tensor:
        """Gather `[..., n_sources, n_destinations]` into the flat edge order."""
        return matrix[..., self.edge_src, self.edge_dst]

    def masks_without(self, edge_ids: torch.Tensor) -> torch.Tensor:
        """`[len(edge_ids), n_sources, n_destinations]`: every edge on except one per mask."""
        masks = self.mask().expand(len(edge_ids), -1, -1).clone()
        masks[torch.arange(len(edge_ids)), self.edge_src[edge_ids], self.edge_dst[edge_ids]] = 0.0
        return masks

    def mask(self, edges: list[str] | None = None, value: float = 1.0) -> torch.Tensor:
        """A dense mask with `value` on the listed edges (all real edges when None), 0 elsewhere."""
        flat = torch.zeros(self.n_edges)
        if edges is None:
            flat.fill_(value)
        else:
            flat[[self.edge_index(e) for e in edges]] = value
        return self.to_matrix(flat)

    def __repr__(self) -> str:
        return (
            f"Graph({self.spec.n_layers} layers x {self.spec.n_heads} heads, "
            f"{self.n_sources} sources, {self.n_destinations} destinations, {self.n_edges} edges)"
        )
