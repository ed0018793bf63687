"""Ground-truth circuits: the JSON files in `ground_truth/` (packaged with the wheel too), loaded
and checked against a graph.

A file names its task and model, its source, the circuit's edges (and the nodes they touch)
in the graph's naming, and, per ablation kind, the edges that are detectable under that
ablation: an edge whose removal alone changes no output is invisible to every method, so
recovery is reported against both the full and the detectable set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.package_data import checkout_root, data_path

if TYPE_CHECKING:  # masks need torch; reading the files does not (`bench list` asks `has_ground_truth`)
    import torch

    from bench.graph import Graph

GROUND_TRUTH_DIR = data_path("ground_truth")
SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "task", "model", "granularity", "source", "nodes", "edges")


class GroundTruthError(ValueError):
    """A ground-truth file that does not fit its graph; the message names the file and entry."""


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth circuit, validated against a graph.

    Attributes:
        task, model: what it is a circuit of.
        edges: edge names in the graph's naming.
        nodes: the components those edges touch.
        source: where it comes from (paper and section, or how it was derived).
        detectable: per ablation kind, the subset of `edges` whose removal alone changes
            the model's outputs under that ablation.
    """

    task: str
    model: str
    edges: tuple[str, ...]
    nodes: tuple[str, ...]
    source: dict[str, Any]
    detectable: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def edge_mask(self, graph: Graph, ablation: str | None = None) -> torch.Tensor:
        """Boolean `[n_edges]`: the circuit's edges, or only its detectable ones under `ablation`."""
        import torch

        names = self.edges if ablation is None else self.detectable_edges(ablation)
        mask = torch.zeros(graph.n_edges, dtype=torch.bool)
        mask[[graph.edge_index(name) for name in names]] = True
        return mask

    def detectable_edges(self, ablation: str) -> tuple[str, ...]:
        if ablation not in self.detectable:
            known = ", ".join(self.detectable) or "none recorded"
            raise GroundTruthError(f"{self.task}: no detectable set for ablation {ablation!r}; recorded: {known}")
        return self.detectable[ablation]


def ground_truth_path(task: str, root: Path = GROUND_TRUTH_DIR) -> Path:
    return root / f"{task}.json"


def has_ground_truth(task: str, model: str | None = None, root: Path = GROUND_TRUTH_DIR) -> bool:
    """Whether `task` has a ground-truth file, and (given `model`) whether it is a circuit of that model."""
    path = ground_truth_path(task, root)
    if not path.exists():
        return False
    return model is None or json.loads(path.read_text()).get("model") == model


def load_ground_truth(task: str, graph: Graph, root: Path = GROUND_TRUTH_DIR) -> GroundTruth:
    """Read `ground_truth/<task>.json` and check every entry against `graph`.

    Raises:
        GroundTruthError: missing keys, wrong schema, an unknown node, or an edge that is not
            in the graph (the message names the file and the entry).
    """
    path = ground_truth_path(task, root)
    data = json.loads(path.read_text())
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise GroundTruthError(f"{path.name}: missing keys {missing}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise GroundTruthError(f"{path.name}: schema_version {data['schema_version']}, expected {SCHEMA_VERSION}")
    for name in data["edges"]:
        try:
            graph.edge_index(name)
        except ValueError as err:
            raise GroundTruthError(f"{path.name}: {err}") from None
    valid_nodes = set(graph.nodes)
    for node in data["nodes"]:
        if node not in valid_nodes:
            raise GroundTruthError(f"{path.name}: unknown node {node!r} (not in the {data['model']} graph)")
    edges = set(data["edges"])
    detectable = {kind: tuple(names) for kind, names in data.get("detectable", {}).items()}
    for kind, names in detectable.items():
        stray = sorted(set(names) - edges)
        if stray:
            raise GroundTruthError(f"{path.name}: detectable[{kind!r}] lists edges outside the circuit: {stray}")
    return GroundTruth(
        data["task"], data["model"], tuple(data["edges"]), tuple(data["nodes"]), data["source"], detectable
    )


def write_ground_truth(payload: dict[str, Any], root: Path | None = None) -> Path:
    """Write a ground-truth file (sorted, stable formatting, so regenerating it shows no diff).

    Without `root` it goes to the checkout's `ground_truth/`, where git sees it; an installed
    package's copies are the published ones and are never rewritten.

    Raises:
        GroundTruthError: no `root` and no checkout (CDBench runs from an installed wheel).
    """
    if root is None:
        checkout = checkout_root()
        if checkout is None:
            raise GroundTruthError("CDBench is installed, not a checkout: no ground_truth/ folder to write into")
        root = checkout / "ground_truth"
    path = ground_truth_path(payload["task"], root)
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, **payload}, indent=1) + "\n")
    return path
