"""ACDC's canonical ground-truth circuits for IOI, greater-than and docstring, derived by rule.

The circuits are the ones ACDC (Conmy et al. 2023) scores against, re-derived from the rules in its
code (ArthurConmy/Automatic-Circuit-Discovery at ACDC_COMMIT): head classes and class-level connections,
not edge lists typed by hand. Each rule is applied in ACDC's own graph, whose nodes are TransformerLens
hook names (`blocks.L.attn.hook_result` of head H, `blocks.L.hook_q_input` of head H, `blocks.L.hook_mlp_in`,
...), exactly as ACDC does, and the result is then translated to this benchmark's graph:
- DIRECT (`hook_q_input -> attn.hook_q`) and PLACEHOLDER (`attn.hook_q -> hook_result`, `mlp_in -> mlp_out`)
  edges are dropped: our graph has no q/k/v-internal edges;
- sources: `blocks.0.hook_resid_pre` (and `hook_embed`, `hook_pos_embed`) -> `input`, head result ->
  `aL.hH`, `blocks.L.hook_mlp_out` -> `mL`;
- destinations: `blocks.L.hook_X_input` of head H -> `aL.hH<X>`, `blocks.L.hook_mlp_in` -> `mL`,
  the last `hook_resid_post` -> `logits`.
ACDC's residual (ADDITION) edges are exactly our edges under this map (tested), so nothing is lost.

Which edges are *detectable* (removing one alone moves the output) needs the real weights; `measure_detectable`
measures it, `python -m bench ground-truth derive <task> --detectable` writes it into the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch

from bench.graph import Graph
from bench.zoo import model_graph

ACDC_COMMIT = "bc99ace817974b5584b7ee203d596a8e2bbcd399"
ACDC_REPO = "ArthurConmy/Automatic-Circuit-Discovery"

Node = tuple[str, int | None]
"""An ACDC node: TransformerLens hook name and head index (None for whole-residual hooks)."""
AcdcEdge = tuple[Node, Node]
"""(parent, child). ACDC's own dictionaries key an edge as (child, child index, parent, parent index)."""

EMBED: Node = ("blocks.0.hook_resid_pre", None)


def result(layer: int, head: int) -> Node:
    return (f"blocks.{layer}.attn.hook_result", head)


def qkv_input(layer: int, head: int, letter: str) -> Node:
    return (f"blocks.{layer}.hook_{letter}_input", head)


def qkv(layer: int, head: int, letter: str) -> Node:
    return (f"blocks.{layer}.attn.hook_{letter}", head)


def mlp_in(layer: int) -> Node:
    return (f"blocks.{layer}.hook_mlp_in", None)


def mlp_out(layer: int) -> Node:
    return (f"blocks.{layer}.hook_mlp_out", None)


def resid_post(n_layers: int) -> Node:
    return (f"blocks.{n_layers - 1}.hook_resid_post", None)


# --- ACDC's graph and the translation to ours ------------------------------------------------------

_SOURCE = re.compile(
    r"^(?:blocks\.0\.hook_resid_pre|hook_embed|hook_pos_embed|blocks\.(\d+)\.(attn\.hook_result|hook_mlp_out))$"
)
_DESTINATION = re.compile(r"^blocks\.(\d+)\.hook_(?:([qkv])_input|(mlp_in)|(resid_post))$")


def acdc_graph(n_layers: int, n_heads: int, mlps: bool = True) -> list[AcdcEdge]:
    """Every edge of ACDC's graph (`TLACDCCorrespondence.setup_from_model`, use_pos_embed=False): each
    writer (embedding, head result, MLP out) feeds every later q/k/v input, MLP input and resid_post; a
    head feeds the MLP of its own layer; plus DIRECT q/k/v edges and PLACEHOLDER edges."""
    edges: list[AcdcEdge] = []
    writers: list[Node] = [EMBED]
    for layer in range(n_layers):
        for head in range(n_heads):
            for letter in "qkv":
                edges += [(writer, qkv_input(layer, head, letter)) for writer in writers]
                edges.append((qkv_input(layer, head, letter), qkv(layer, head, letter)))
                edges.append((qkv(layer, head, letter), result(layer, head)))
        writers += [result(layer, head) for head in range(n_heads)]
        if mlps:
            edges += [(writer, mlp_in(layer)) for writer in writers]
            edges.append((mlp_in(layer), mlp_out(layer)))
            writers.append(mlp_out(layer))
    edges += [(writer, resid_post(n_layers)) for writer in writers]
    return edges


def edge_type(edge: AcdcEdge) -> str:
    """ACDC's EdgeType of an edge: "direct" (q/k/v input -> q/k/v), "placeholder" (into a head result
    or MLP output) or "addition" (a residual-stream edge)."""
    parent, child = edge
    if parent[0].endswith("_input") and child[0].replace(".attn.", ".") + "_input" == parent[0]:
        return "direct"
    if child[0].endswith(("attn.hook_result", "hook_mlp_out")):
        return "placeholder"
    return "addition"


def translate(edge: AcdcEdge) -> str | None:
    """Our name of an ACDC edge, or None for DIRECT and PLACEHOLDER edges (which our graph has not)."""
    (parent, parent_head), (child, child_head) = edge
    source, destination = _SOURCE.match(parent), _DESTINATION.match(child)
    if source is None or destination is None:
        return None
    if source[1] is None:
        src = "input"
    elif source[2] == "hook_mlp_out":
        src = f"m{source[1]}"
    else:
        src = f"a{source[1]}.h{parent_head}"
    layer, letter, is_mlp, _ = destination.groups()
    if letter:
        dst = f"a{layer}.h{child_head}<{letter}>"
    elif is_mlp:
        dst = f"m{layer}"
    else:
        dst = "logits"
    return f"{src}->{dst}"


def translate_all(edges: Iterable[AcdcEdge], graph: Graph) -> list[str]:
    """Our names of the ADDITION edges among `edges`, in the graph's edge order (checked against it)."""
    names = {name for name in map(translate, edges) if name is not None}
    return sorted(names, key=graph.edge_index)


def acdc_edge_counts(edges: Iterable[AcdcEdge]) -> dict[str, int]:
    """Edges per ACDC EdgeType; ACDC's `count_no_edges` counts addition + direct."""
    counts = {"addition": 0, "direct": 0, "placeholder": 0}
    for edge in edges:
        counts[edge_type(edge)] += 1
    return counts


# --- IOI (Wang et al. 2022), ACDC's acdc/ioi/utils.py::get_ioi_true_edges ------------------------------

IOI_CIRCUIT: dict[str, tuple[tuple[int, int], ...]] = {
    "name mover": ((9, 9), (10, 0), (9, 6)),
    "backup name mover": ((10, 10), (10, 6), (10, 2), (10, 1), (11, 2), (9, 7), (9, 0), (11, 9)),
    "negative": ((10, 7), (11, 10)),
    "s2 inhibition": ((7, 3), (7, 9), (8, 6), (8, 10)),
    "induction": ((5, 5), (5, 8), (5, 9), (6, 9)),
    "duplicate token": ((0, 1), (0, 10), (3, 0)),
    "previous token": ((2, 2), (4, 11)),
}
"""`IOI_CIRCUIT` of acdc/ioi/utils.py: 26 heads (7.1 and five previous-token heads are commented out there)."""

IOI_CONNECTIONS: tuple[tuple[str, str, str], ...] = (
    ("INPUT", "previous token", "qkv"),
    ("INPUT", "duplicate token", "qkv"),
    ("INPUT", "s2 inhibition", "q"),
    ("INPUT", "negative", "kv"),
    ("INPUT", "name mover", "kv"),
    ("INPUT", "backup name mover", "kv"),
    ("previous token", "induction", "kv"),
    ("induction", "s2 inhibition", "kv"),
    ("duplicate token", "s2 inhibition", "kv"),
    ("s2 inhibition", "negative", "q"),
    ("s2 inhibition", "name mover", "q"),
    ("s2 inhibition", "backup name mover", "q"),
    ("negative", "OUTPUT", ""),
    ("name mover", "OUTPUT", ""),
    ("backup name mover", "OUTPUT", ""),
)
"""`special_connections` of get_ioi_true_edges: (from class, to class, receiving q/k/v inputs)."""


def ioi_acdc_edges(n_layers: int = 12, n_heads: int = 12) -> set[AcdcEdge]:
    """get_ioi_true_edges, step by step in ACDC's graph:
    1. mask every non-circuit head (its q/k/v inputs, q/k/v and result lose all edges); MLPs all stay;
    2. cut every circuit head's q/k/v inputs from the embedding and from all earlier heads, and its
       result from resid_post;
    3. add the class connections, where INPUT = embedding + every MLP out and OUTPUT = resid_post +
       every MLP in, keeping an edge only if the receiver's layer is larger (embedding -1, resid_post
       n_layers + 1, an MLP its own layer)."""
    heads = {head for members in IOI_CIRCUIT.values() for head in members}
    masked = {
        node
        for layer in range(n_layers)
        for head in range(n_heads)
        if (layer, head) not in heads
        for letter in "qkv"
        for node in (qkv_input(layer, head, letter), qkv(layer, head, letter), result(layer, head))
    }
    present = {edge for edge in acdc_graph(n_layers, n_heads) if edge[0] not in masked and edge[1] not in masked}
    for layer, head in heads:
        for letter in "qkv":
            child = qkv_input(layer, head, letter)
            present.discard((EMBED, child))
            present -= {(result(earlier, h), child) for earlier in range(layer) for h in range(n_heads)}
        present.discard((result(layer, head), resid_post(n_layers)))
    for sender, receiver, letters in IOI_CONNECTIONS:
        if sender == "INPUT":
            sources = [(-1, EMBED)] + [(m, mlp_out(m)) for m in range(n_layers)]
        else:
            sources = [(layer, result(layer, head)) for layer, head in IOI_CIRCUIT[sender]]
        if receiver == "OUTPUT":
            targets = [(n_layers + 1, resid_post(n_layers))] + [(m, mlp_in(m)) for m in range(n_layers)]
        else:
            targets = [
                (layer, qkv_input(layer, head, letter)) for layer, head in IOI_CIRCUIT[receiver] for letter in letters
            ]
        present |= {(src, dst) for src_layer, src in sources for dst_layer, dst in targets if dst_layer > src_layer}
    return present


# --- Greater-than (Hanna et al. 2023), ACDC's acdc/greaterthan/utils.py::get_greaterthan_true_edges -------

GREATERTHAN_CIRCUIT: dict[str, tuple[tuple[int, int | None], ...]] = {
    "0305": ((0, 3), (0, 5)),
    "01": ((0, 1),),
    "MEARLY": ((0, None), (1, None), (2, None), (3, None)),
    "AMID": ((5, 5), (6, 1), (6, 9), (7, 10), (8, 11), (9, 1)),
    "MLATE": ((8, None), (9, None), (10, None), (11, None)),
}
"""`CIRCUIT` of acdc/greaterthan/utils.py: (layer, head), with head None for the MLP of that layer."""

GREATERTHAN_PAIRS = (("01", "MEARLY"), ("01", "AMID"), ("0305", "AMID"), ("MEARLY", "AMID"), ("AMID", "MLATE"))
"""`connected_pairs` of get_greaterthan_true_edges: every member of the first group feeds every later
member of the second (a head also feeds the MLP of its own layer), on all of q, k and v."""


def _writer(layer: int, head: int | None) -> Node:
    return mlp_out(layer) if head is None else result(layer, head)


def _readers(layer: int, head: int | None) -> list[Node]:
    return [mlp_in(layer)] if head is None else [qkv_input(layer, head, letter) for letter in "qkv"]


def greaterthan_acdc_edges(n_layers: int = 12) -> set[AcdcEdge]:
    """get_greaterthan_true_edges: start empty, then add
    1. embedding -> every reader of 0305, 01 and MEARLY; AMID and MLATE -> resid_post;
    2. MLP i -> MLP j (i < j) within MEARLY and within MLATE;
    3. the connected pairs;
    4. each circuit head's DIRECT and PLACEHOLDER q/k/v edges;
    5. "Hanna et al have totally clean query inputs to AMID heads": MLP s -> MLP r for s < r < 9 (the
       last AMID layer), and MLP s -> the q input of every AMID head in a later layer."""
    circuit = GREATERTHAN_CIRCUIT
    edges: set[AcdcEdge] = set()
    for group in ("0305", "01", "MEARLY"):
        edges |= {(EMBED, reader) for member in circuit[group] for reader in _readers(*member)}
    for group in ("AMID", "MLATE"):
        edges |= {(_writer(*member), resid_post(n_layers)) for member in circuit[group]}
    for group in ("MEARLY", "MLATE"):
        edges |= {(mlp_out(i), mlp_in(j)) for i, _ in circuit[group] for j, _ in circuit[group] if i < j}
    for first, second in GREATERTHAN_PAIRS:
        for i1, j1 in circuit[first]:
            for i2, j2 in circuit[second]:
                if i1 < i2 or (i1 == i2 and j1 is not None and j2 is None):
                    edges |= {(_writer(i1, j1), reader) for reader in _readers(i2, j2)}
    for layer, head in (member for members in circuit.values() for member in members):
        if head is not None:
            for letter in "qkv":
                edges.add((qkv_input(layer, head, letter), qkv(layer, head, letter)))
                edges.add((qkv(layer, head, letter), result(layer, head)))
    last_amid = max(layer for layer, _ in circuit["AMID"])
    edges |= {(mlp_out(s), mlp_in(r)) for s in range(last_amid) for r in range(s + 1, last_amid)}
    edges |= {(mlp_out(s), qkv_input(layer, head, "q")) for layer, head in circuit["AMID"] for s in range(layer)}
    return edges


# --- Docstring (Heimersheim & Janiak 2023), ACDC's acdc/docstring/utils.py::get_docstring_subgraph_true_edges

DOCSTRING_READS: dict[tuple[int, int, str], tuple[tuple[int, int] | None, ...]] = {
    (0, 5, "v"): (None,),
    (1, 4, "v"): (None, (0, 5)),
    (1, 2, "q"): (None, (0, 5)),
    (1, 2, "k"): (None, (0, 5)),
    (2, 0, "q"): (None, (0, 5)),
    (2, 0, "k"): (None, (0, 5)),
    (2, 0, "v"): ((1, 4),),
    **{
        (3, head, letter): sources
        for head in (0, 6)
        for letter, sources in (("q", ((1, 4),)), ("k", ((2, 0), (1, 2))), ("v", (None, (0, 5))))
    },
}
"""Stefan Heimersheim's manual circuit as ACDC lists it: receiving (layer, head, input) -> sending heads
(None = the embedding). Every other edge of the circuit is absent, including q/k inputs of 0.5 and 1.4."""
DOCSTRING_OUTPUT_HEADS = ((3, 0), (3, 6))
"""Heads whose result feeds resid_post."""


def docstring_acdc_edges(n_layers: int = 4) -> set[AcdcEdge]:
    """The 37 edges of get_docstring_subgraph_true_edges: the residual edges above, the output edges,
    and one DIRECT edge per q/k/v input that receives anything."""
    edges: set[AcdcEdge] = set()
    for (layer, head, letter), sources in DOCSTRING_READS.items():
        reader = qkv_input(layer, head, letter)
        edges |= {(EMBED if source is None else result(*source), reader) for source in sources}
        edges.add((reader, qkv(layer, head, letter)))
    edges |= {(result(layer, head), resid_post(n_layers)) for layer, head in DOCSTRING_OUTPUT_HEADS}
    return edges


# --- Ground-truth files -------------------------------------------------------------------------------

CANONICAL: dict[str, dict[str, Any]] = {
    "ioi": {
        "model": "gpt2",
        "derive": ioi_acdc_edges,
        "paper": "Wang et al. 2022, 'Interpretability in the Wild' (arXiv 2211.00593), Sec. 3 and Fig. 2 (classes)",
        "code": "acdc/ioi/utils.py::IOI_CIRCUIT, get_ioi_true_edges",
        "rule": (
            "26 heads in 7 classes; residual edges only along the 15 class connections (INPUT = embedding + "
            "every MLP, OUTPUT = logits + every MLP, receiver layer > sender layer); non-circuit heads removed; "
            "every MLP kept with all its edges (MLP<->MLP, MLP->circuit-head q/k/v, circuit head->MLP, "
            "embedding->MLP, MLP->logits), as ACDC's code leaves them"
        ),
        "qkv": "class connections name their receiving inputs (e.g. s2 inhibition -> name mover on q only); "
        "MLP -> circuit head edges are kept on all of q, k and v",
    },
    "greater-than": {
        "model": "gpt2",
        "derive": greaterthan_acdc_edges,
        "paper": "Hanna, Liu & Variengien 2023, 'How does GPT-2 compute greater-than?' (arXiv 2305.00586), Sec. 3-4",
        "code": "acdc/greaterthan/utils.py::CIRCUIT, get_greaterthan_true_edges",
        "rule": (
            "groups 0305 = {0.3, 0.5}, 01 = {0.1}, MEARLY = MLPs 0-3, AMID = {5.5, 6.1, 6.9, 7.10, 8.11, 9.1}, "
            "MLATE = MLPs 8-11; embedding -> 0305, 01, MEARLY; AMID, MLATE -> logits; MLP chains within MEARLY and "
            "MLATE; pairs 01->MEARLY, 01->AMID, 0305->AMID, MEARLY->AMID, AMID->MLATE (sender layer < receiver, "
            "or a head into its own layer's MLP); plus MLP s -> MLP r for s < r < 9 and every earlier MLP -> "
            "AMID q inputs ('Hanna et al have totally clean query inputs to AMID heads')"
        ),
        "qkv": "edges into a head named by a group pair or the embedding rule reach all of q, k and v; "
        "the extra MLP -> AMID edges reach q only",
    },
    "docstring": {
        "model": "attn-only-4l",
        "derive": docstring_acdc_edges,
        "paper": "Heimersheim & Janiak 2023, 'A circuit for Python docstrings in a 4-layer attention-only "
        "transformer' (Alignment Forum), the manual circuit of its appendix",
        "code": "acdc/docstring/utils.py::get_docstring_subgraph_true_edges",
        "rule": "the 37 edges ACDC lists (24 residual + 13 DIRECT q/k/v edges); heads 0.5, 1.2, 1.4, 2.0, 3.0, 3.6",
        "qkv": "each edge names its receiving input (e.g. 1.4 reads only on v; 3.0 and 3.6 read 1.4 on q, 2.0 and "
        "1.2 on k, the embedding and 0.5 on v)",
    },
}
"""The tasks with a canonical circuit: their model, the ACDC function that defines it, and its sources."""


def canonical_acdc_edges(task: str) -> set[AcdcEdge]:
    """The task's circuit in ACDC's graph, all edge types included."""
    return set(CANONICAL[task]["derive"]())


def canonical_edges(task: str) -> list[str]:
    """The task's circuit in our graph's naming, in the graph's edge order."""
    return translate_all(canonical_acdc_edges(task), model_graph(CANONICAL[task]["model"]))


def ground_truth_payload(task: str) -> dict[str, Any]:
    """The ground-truth file for a canonical task, ready for `write_ground_truth` (no detectable sets:
    those need the real weights, see `measure_detectable`)."""
    spec = CANONICAL[task]
    graph = model_graph(spec["model"])
    acdc = canonical_acdc_edges(task)
    edges = translate_all(acdc, graph)
    return {
        "task": task,
        "model": spec["model"],
        "granularity": "edge",
        "source": {
            "kind": "ACDC's canonical circuit, re-derived from the definition in its code (not measured on weights)",
            "paper": spec["paper"] + "; used as ground truth by Conmy et al. 2023 (ACDC), Sec. 4.1",
            "code": f"{ACDC_REPO}@{ACDC_COMMIT}, {spec['code']}",
            "rule": spec["rule"],
            "qkv_inputs": spec["qkv"],
            "translation": (
                "ACDC edges -> ours: DIRECT and PLACEHOLDER edges dropped; blocks.0.hook_resid_pre -> input; "
                "attn.hook_result of head L.H -> aL.hH; hook_X_input of head L.H -> aL.hH<X>; hook_mlp_out -> "
                "mL (source); hook_mlp_in -> mL (destination); hook_resid_post -> logits"
            ),
            "acdc_edge_count": {kind: n for kind, n in acdc_edge_counts(acdc).items() if kind != "placeholder"},
            "generated_by": "python -m bench ground-truth derive " + task,
        },
        "detectable_note": (
            "not recorded: which edges are detectable under an ablation must be measured with the real "
            f"{spec['model']} weights; run 'python -m bench ground-truth derive {task} --detectable' where they "
            "are reachable (bench.canonical_circuits.measure_detectable)"
        ),
        "nodes": graph.nodes_of(edges),
        "edges": edges,
    }


@torch.no_grad()
def measure_detectable(task: str, seed: int = 0) -> dict[str, list[str]]:
    """Per ablation kind of the task, its detectable ground-truth edges, on the real model (needs its weights)."""
    from bench.detectability import detectable_edges
    from bench.zoo import load_model
    from tasks import TASKS

    spec = TASKS.get(task)
    model = load_model(spec.model)
    data = spec.build(model, spec.default_examples, seed)
    edges = canonical_edges(task)
    return {kind: detectable_edges(model, data, edges, kind, seed) for kind in spec.ablations}
