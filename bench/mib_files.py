"""Reading and writing MIB's circuit files (the EAP-IG library's `Graph.to_json`/`to_pt`
formats, `hannamw/EAP-IG` `src/eap/graph.py`; the leaderboard's loaders
`mttk/MIB-circuit-track-autoeval` `MIB_circuit_track/circuit_loading.py`), with the readable
validation MIB's loaders lack: every problem is one line naming the entry and the file.

- JSON: `cfg`, `nodes` {name: {"in_graph", "score"?}}, `edges` {"src->dst": {"score", "in_graph"}}.
- PT: `cfg`, `src_nodes`, `dst_nodes`, `edges_scores` `(n_src, n_dst)` (-inf where no edge
  exists), `edges_in_graph`, `nodes_in_graph`, optional `nodes_scores` (NaN = unscored).
- A circuit folder: one importance file, or several binary circuits (MIB reads at most 9).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.graph import Graph
from bench.mib_layout import MibLayout, mib_cfg
from bench.result_schema import ResultFileError

MAX_CIRCUITS = 9  # the leaderboard evaluates at most 9 binary circuits per folder
MAX_LINES = 10  # problems listed before "... and N more"


class MibFileError(ResultFileError):
    """An MIB circuit file that does not fit the model; one line per problem, naming the entry."""


@dataclass(frozen=True)
class MibCircuit:
    """What one MIB file holds, in CDBench's edge order.

    Attributes:
        scores: one float64 per edge (0 where a circuit file has none), exactly as the file has it.
        in_graph: one bool per edge.
        node_scores: the nodes' own scores where the file has them (NaN = unscored, left out).
        has_scores: whether the file carries edge scores (an importance file) or not (a circuit).
    """

    scores: torch.Tensor
    in_graph: torch.Tensor
    node_scores: dict[str, float] | None
    has_scores: bool


def _fail(path: Path, problems: list[str]) -> None:
    if problems:
        shown = [f"{path}: {p}" for p in problems[:MAX_LINES]]
        if len(problems) > MAX_LINES:
            shown.append(f"{path}: ... and {len(problems) - MAX_LINES} more problems")
        raise MibFileError("\n".join(shown))


def _check_cfg(path: Path, cfg: object, graph: Graph) -> None:
    if not isinstance(cfg, dict):
        _fail(path, [f"'cfg' must be an object with n_layers and n_heads, got {type(cfg).__name__}"])
    spec = graph.spec
    found = (cfg.get("n_layers"), cfg.get("n_heads"))
    if found != (spec.n_layers, spec.n_heads):
        _fail(
            path,
            [
                f"cfg describes {found[0]} layers x {found[1]} heads; the model has "
                f"{spec.n_layers} layers x {spec.n_heads} heads ({graph.n_edges} edges)"
            ],
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def to_json_dict(
    graph: Graph,
    scores: torch.Tensor | None,
    in_graph: torch.Tensor,
    d_model: int,
    node_scores: dict[str, float] | None = None,
    extra_cfg: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An MIB JSON file: every node and edge; edge `score` only when `scores` is given."""
    cfg = {**mib_cfg(graph, d_model), **(extra_cfg or {})}
    kept_nodes = set(graph.nodes_of([n for n, k in zip(graph.edge_names, in_graph.tolist(), strict=True) if k]))
    nodes: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        entry: dict[str, Any] = {"in_graph": node in kept_nodes or node == "logits"}
        if node_scores is not None and node in node_scores:
            entry["score"] = float(node_scores[node])
        nodes[node] = entry
    edges: dict[str, dict[str, Any]] = {}
    values = scores.tolist() if scores is not None else [None] * graph.n_edges
    for name, value, kept in zip(graph.edge_names, values, in_graph.tolist(), strict=True):
        edges[name] = {"in_graph": bool(kept)} if value is None else {"score": value, "in_graph": bool(kept)}
    return {"cfg": cfg, "nodes": nodes, "edges": edges}


def to_pt_dict(
    graph: Graph,
    scores: torch.Tensor,
    in_graph: torch.Tensor,
    d_model: int,
    node_scores: dict[str, float] | None = None,
    extra_cfg: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An MIB PT file in the library's matrix layout (`MibLayout`), -inf where no edge exists."""
    layout = MibLayout(graph)
    kept_nodes = set(graph.nodes_of([n for n, k in zip(graph.edge_names, in_graph.tolist(), strict=True) if k]))
    payload: dict[str, Any] = {
        "cfg": {**mib_cfg(graph, d_model), **(extra_cfg or {})},
        "src_nodes": list(layout.sources),
        "dst_nodes": list(layout.destinations),
        "edges_scores": layout.to_matrix(scores.double(), fill=-math.inf),
        "edges_in_graph": layout.to_matrix(in_graph.bool(), fill=False),
        "nodes_in_graph": torch.tensor([name in kept_nodes for name in layout.sources]),
    }
    if node_scores is not None:
        payload["nodes_scores"] = torch.tensor(
            [node_scores.get(name, math.nan) for name in layout.sources], dtype=torch.float64
        )
    return payload


def read_json(path: Path, graph: Graph) -> MibCircuit:
    """Read and check an MIB JSON file against `graph`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MibFileError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        _fail(path, [f"the file must be an object with cfg, nodes and edges, got {type(data).__name__}"])
    missing = [key for key in ("cfg", "nodes", "edges") if key not in data]
    _fail(path, [f"key {key!r} is missing; an MIB file has cfg, nodes and edges" for key in missing])
    _check_cfg(path, data["cfg"], graph)
    edges, nodes = data["edges"], data["nodes"]
    if not isinstance(edges, dict) or not isinstance(nodes, dict):
        _fail(path, ["'nodes' and 'edges' must be objects keyed by name"])
    problems: list[str] = []
    scores = torch.zeros(graph.n_edges, dtype=torch.float64)
    in_graph = torch.zeros(graph.n_edges, dtype=torch.bool)
    seen = torch.zeros(graph.n_edges, dtype=torch.bool)
    with_score = known = 0  # edges with a score key, of the known edges
    for name, entry in edges.items():
        try:
            index = graph.edge_index(name)
        except ValueError as err:
            problems.append(f"unknown edge {name!r}: {err}")
            continue
        seen[index] = True
        if not isinstance(entry, dict) or not isinstance(entry.get("in_graph"), bool):
            problems.append(f"edge {name!r} must be an object with a true/false 'in_graph'")
            continue
        in_graph[index] = entry["in_graph"]
        known += 1
        if "score" in entry:
            with_score += 1
            value = _number(entry["score"])
            if value is None or not math.isfinite(value):
                problems.append(f"edge {name!r} has score {entry['score']!r}; scores must be finite numbers")
                continue
            scores[index] = value
    missing_edges = [graph.edge_names[i] for i in torch.nonzero(~seen).flatten().tolist()]
    problems += [f"edge {name!r} of the model's graph is missing" for name in missing_edges]
    if len(edges) != graph.n_edges:
        problems.append(f"{len(edges)} edges in the file; the model's graph has {graph.n_edges}")
    if 0 < with_score < known:
        problems.append(f"{with_score} of {known} edges have a score; give every edge one, or none (a circuit)")
    node_scores: dict[str, float] = {}
    for name, entry in nodes.items():
        if name not in graph.nodes:
            problems.append(f"unknown node {name!r}; the model's nodes are input, a{{L}}.h{{H}}, m{{L}}, logits")
        elif isinstance(entry, dict) and "score" in entry:
            value = _number(entry["score"])
            if value is None:
                problems.append(f"node {name!r} has score {entry['score']!r}; scores must be numbers (NaN = unscored)")
            elif not math.isnan(value):
                node_scores[name] = value
    _fail(path, problems)
    return MibCircuit(scores, in_graph, node_scores or None, with_score > 0)


def read_pt(path: Path, graph: Graph) -> MibCircuit:
    """Read and check an MIB PT file against `graph` (loaded with `weights_only`, so a file
    cannot run code)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad file
        raise MibFileError(f"{path}: not a readable torch file ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        _fail(path, [f"the file must hold a dict, got {type(data).__name__}"])
    required = ("cfg", "src_nodes", "dst_nodes", "edges_scores", "edges_in_graph", "nodes_in_graph")
    missing = [key for key in required if key not in data]
    _fail(path, [f"key {key!r} is missing; an MIB PT file has {', '.join(required)}" for key in missing])
    _check_cfg(path, data["cfg"], graph)
    layout = MibLayout(graph)
    problems: list[str] = []
    for key, expected in (("src_nodes", layout.sources), ("dst_nodes", layout.destinations)):
        found = list(data[key])
        if len(found) != len(expected):
            problems.append(f"{key} has {len(found)} names; the model's graph has {len(expected)}")
        for i, (got, want) in enumerate(zip(found, expected, strict=False)):
            if got != want:
                problems.append(f"{key}[{i}] is {got!r}; MIB's layout for this model has {want!r} there")
                break
    for key in ("edges_scores", "edges_in_graph"):
        value = data[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != layout.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{key} has shape {shape}; the model's graph needs {layout.shape}")
    _fail(path, problems)
    scores = layout.to_edges(data["edges_scores"].double())
    bad = torch.nonzero(~torch.isfinite(scores)).flatten().tolist()
    _fail(path, [f"edge {graph.edge_names[i]!r} has score {scores[i].item()}; scores must be finite" for i in bad])
    node_scores = None
    if isinstance(data.get("nodes_scores"), torch.Tensor) and data["nodes_scores"].numel() == len(layout.sources):
        node_scores = {
            name: float(v)
            for name, v in zip(layout.sources, data["nodes_scores"].tolist(), strict=True)
            if not math.isnan(v) and name in graph.nodes
        } or None
    in_graph = layout.to_edges(data["edges_in_graph"].bool())
    return MibCircuit(scores, in_graph, node_scores, True)


def read_file(path: Path, graph: Graph) -> MibCircuit:
    """An MIB JSON or PT file, by its suffix."""
    if path.suffix == ".json":
        return read_json(path, graph)
    if path.suffix == ".pt":
        return read_pt(path, graph)
    raise MibFileError(f"{path}: not an MIB circuit file; valid choices: a .json or .pt file, or a folder of them")


def circuit_files(folder: Path) -> list[Path]:
    """The .json and .pt files of an MIB circuit folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".json", ".pt") and p.is_file())


def read_scores(path: Path, graph: Graph) -> tuple[torch.Tensor, dict[str, float] | None]:
    """Edge scores (and node scores) from an importance file, or from a folder of one importance
    file or of binary circuits. Circuits become scores by counting how many of them hold each
    edge, so the ranking's top-k gives back each of MIB's nested circuits."""
    if not path.exists():
        raise MibFileError(f"{path}: no such file or folder; give an MIB .json or .pt file or a circuit folder")
    if path.is_file():
        files = [path]
    else:
        files = circuit_files(path)
        if not files:
            raise MibFileError(f"{path}: the folder holds no .json or .pt file")
    if len(files) == 1:
        circuit = read_file(files[0], graph)
        if circuit.has_scores:
            return circuit.scores, circuit.node_scores
        return circuit.in_graph.double(), None
    if len(files) > MAX_CIRCUITS:
        raise MibFileError(f"{path}: {len(files)} circuit files; MIB reads at most {MAX_CIRCUITS}, give at most that")
    counts = torch.zeros(graph.n_edges, dtype=torch.float64)
    for file in files:
        counts += read_file(file, graph).in_graph.double()
    return counts, None


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's circuit files (names and contents, in name order)."""
    digest = hashlib.sha256()
    for file in [path] if path.is_file() else circuit_files(path):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def cfg_hints(path: Path) -> dict[str, str]:
    """The task and model CDBench recorded in an exported file's cfg (`cdbench_task`,
    `cdbench_model`), read without a graph; {} when the file has none."""
    files = [path] if path.is_file() else circuit_files(path) if path.is_dir() else []
    if not files:
        return {}
    try:
        if files[0].suffix == ".json":
            cfg = json.loads(files[0].read_text()).get("cfg", {})
        else:
            cfg = torch.load(files[0], map_location="cpu", weights_only=True).get("cfg", {})
    except Exception:
        return {}
    return {key: cfg[key] for key in ("cdbench_task", "cdbench_model") if isinstance(cfg.get(key), str)}
