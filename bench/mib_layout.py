"""MIB's graph layout: where each CDBench edge sits in the `(n_src, n_dst)` matrices of MIB's
submission files, and MIB's names for tasks and models.

Edge and node names are the same in both suites (`input`, `a{L}.h{H}`, `m{L}`, `logits`,
`<q|k|v>` on attention inputs), so only the matrix order differs. MIB's EAP-IG library
(`hannamw/EAP-IG` `src/eap/graph.py`, `Graph.from_model`, `_backward_index`,
`get_dst_nodes`) orders sources as `input`, then per layer its heads and its MLP, and
destinations per layer as every head's `<q>`, then every head's `<k>`, every head's `<v>`,
then the MLP, with `logits` last. CDBench keeps a head's q, k and v together. The library
always has an MLP per layer; for an attention-only model the MLP rows and columns are there
but hold no edge (score -inf), and the cfg says `attn_only: true`.

>>> from bench.graph import Graph, GraphSpec
>>> layout = MibLayout(Graph(GraphSpec(n_layers=1, n_heads=2, mlp_layers=(True,))))
>>> layout.destinations
['a0.h0<q>', 'a0.h1<q>', 'a0.h0<k>', 'a0.h1<k>', 'a0.h0<v>', 'a0.h1<v>', 'm0', 'logits']
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import torch

from bench.graph import QKV, Graph, head_name, mlp_name

MIB_MODEL_NAMES: dict[str, str] = {
    "gpt2": "gpt2",
    "gpt2-small": "gpt2",
    "Qwen/Qwen2.5-0.5B": "qwen2.5",
    "google/gemma-2-2b": "gemma2",
    "meta-llama/Llama-3.1-8B": "llama3",
    "interpbench": "interpbench",
}
"""CDBench/hub model name -> MIB's short name (`MIB_circuit_track/utils.py`,
`MODEL_NAME_TO_FULLNAME`). Other models keep their own name, made folder-safe."""

MIB_EDGE_COUNTS: dict[str, int] = {
    "gpt2": 32491,
    "qwen2.5": 179749,
    "gemma2": 74218,
    "llama3": 1592881,
    "interpbench": 1108,
}
"""MIB's official edge counts (`mttk/MIB-circuit-track-autoeval`
`MIB_circuit_track/evaluation.py`, `EDGE_COUNTS`)."""


def mib_model_name(model: str) -> str:
    """MIB's short name of a model (`gpt2`, `qwen2.5`, ...), or the model's own name with
    `/`, `:` and `_` made into `-` (an underscore separates task and model in a folder name)."""
    if model in MIB_MODEL_NAMES:
        return MIB_MODEL_NAMES[model]
    return model.replace("/", "-").replace(":", "-").replace("_", "-")


def mib_task_name(task: str) -> str:
    """MIB's folder spelling of a task: hyphens for underscores (`arithmetic-addition`)."""
    return task.replace("_", "-")


def folder_name(task: str, model: str) -> str:
    """`{task}_{model}` as MIB's leaderboard expects (`ioi_gpt2`, `arc-easy_llama3`)."""
    return f"{mib_task_name(task)}_{mib_model_name(model)}"


def ranking_folder(absolute: bool) -> str:
    """The parent folder that pins MIB's top-k convention: the leaderboard reads "abs" plus
    "true"/"false" in it (`eval_submissions.py`, `process_directory`) and scores CMD with
    absolute and CPR with signed top-k."""
    return f"abs-{absolute}"


class MibLayout:
    """Index of one CDBench graph in MIB's matrices.

    Attributes:
        sources: MIB's source nodes in order (`src_nodes` of a PT file).
        destinations: MIB's destination names in order (`dst_nodes`).
        edge_src, edge_dst: for each CDBench edge (in `graph.edge_names` order) its row and
            column in MIB's matrices.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        spec = graph.spec
        sources = ["input"]
        destinations: list[str] = []
        for layer in range(spec.n_layers):
            sources += [head_name(layer, head) for head in range(spec.n_heads)]
            sources.append(mlp_name(layer))
            destinations += [f"{head_name(layer, h)}<{letter}>" for letter in QKV for h in range(spec.n_heads)]
            destinations.append(mlp_name(layer))
        destinations.append("logits")
        self.sources = sources
        self.destinations = destinations
        src_row = {name: i for i, name in enumerate(sources)}
        dst_col = {name: i for i, name in enumerate(destinations)}
        self.edge_src = torch.tensor([src_row[graph.sources[s]] for s in graph.edge_src.tolist()])
        self.edge_dst = torch.tensor([dst_col[graph.destinations[d]] for d in graph.edge_dst.tolist()])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.sources), len(self.destinations)

    @cached_property
    def real_edge_mask(self) -> torch.Tensor:
        """`(n_src, n_dst)` bool: the cells that are edges of this graph."""
        mask = torch.zeros(self.shape, dtype=torch.bool)
        mask[self.edge_src, self.edge_dst] = True
        return mask

    @cached_property
    def flat_position(self) -> torch.Tensor:
        """Each CDBench edge's position in MIB's row-major flattened matrix, the order MIB's
        top-n sorts in (`Graph.apply_topn`: argsort of `scores.view(-1)`)."""
        return self.edge_src * len(self.destinations) + self.edge_dst

    def to_matrix(self, edge_values: torch.Tensor, fill: float | bool = 0.0) -> torch.Tensor:
        """Scatter `[n_edges]` values into MIB's `(n_src, n_dst)` matrix."""
        dense = torch.full(self.shape, fill, dtype=edge_values.dtype)
        dense[self.edge_src, self.edge_dst] = edge_values
        return dense

    def to_edges(self, matrix: torch.Tensor) -> torch.Tensor:
        """Gather MIB's `(n_src, n_dst)` matrix into CDBench's flat edge order."""
        return matrix[self.edge_src, self.edge_dst]


def mib_cfg(graph: Graph, d_model: int) -> dict[str, Any]:
    """The `cfg` MIB's loaders build a graph from (`Graph.from_model` with a dict): layers,
    heads, parallel attention/MLP and d_model; `attn_only` only when the model has no MLPs."""
    spec = graph.spec
    cfg: dict[str, Any] = {
        "n_layers": spec.n_layers,
        "n_heads": spec.n_heads,
        "parallel_attn_mlp": spec.parallel_attn_mlp,
        "d_model": d_model,
    }
    if not any(spec.mlp_layers):
        cfg["attn_only"] = True
    return cfg
