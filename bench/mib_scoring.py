"""MIB's circuit-localisation scores, CPR and CMD, computed the way MIB's code computes them,
beside CDBench's own areas (`bench.scoring`), which weigh the curve differently.

What MIB does (`hannamw/MIB-circuit-track` `MIB_circuit_track/evaluation.py`,
`evaluate_area_under_curve`, as run by the leaderboard `mttk/MIB-circuit-track-autoeval`
`eval_submissions.py`; the top-n and pruning of `hannamw/EAP-IG` `src/eap/graph.py`):

- circuits at the ten edge percentages 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50 and 100 %, each
  the top `int(p * n_edges)` edges (floor, so 0 edges where p * n < 1);
- CPR ranks by the signed score, CMD by |score| (the leaderboard's `abs-False` and
  `abs-True` runs; maintainer in hannamw/MIB-circuit-track issue #19);
- each circuit is pruned before it runs: a node without an incoming or an outgoing edge
  leaves (the input always has incoming), with its edges, until nothing changes;
- f = (m(C) - m(empty)) / (m(model) - m(empty)), m the metric averaged over examples, the
  empty circuit being every edge ablated;
- CPR = trapezoid of f, CMD = trapezoid of |1 - f|, over the ten points on the linear
  percentage axis (x from 0.001 to 1; no point at 0).

Where CDBench departs, it says so: ties in the ranking are broken in the order of MIB's
flattened score matrix (MIB's `torch.argsort` is not stable, so its tie order is whatever
the sort returns); the masked forward is CDBench's runtime under the run's ablation; the
metric is the task's own (logit difference for MIB's tasks and IOI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bench.discovery import DiscoveryRun, EdgeScores
from bench.graph import Graph
from bench.mib_layout import MibLayout
from bench.scoring import per_example_metric

MeanMetric = Callable[[torch.Tensor], np.ndarray]
"""`[n_circuits, n_edges]` bool circuits -> `[n_circuits]` metric averaged over examples."""

MIB_PERCENTAGES: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class MibScores:
    """MIB's CPR (signed top-k) and CMD (absolute top-k) with the curves they integrate.

    `edges_*` are the circuits' sizes after MIB's pruning (MIB's `weighted_edge_counts`).
    """

    percentages: list[float]
    edges_signed: list[int]
    faithfulness_signed: list[float]
    edges_absolute: list[int]
    faithfulness_absolute: list[float]
    cpr: float
    cmd: float
    model_metric: float
    empty_metric: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mib_edge_counts(n_edges: int, percentages: tuple[float, ...] = MIB_PERCENTAGES) -> list[int]:
    """How many edges MIB keeps at each percentage: `int(p * n)`, as its code computes it."""
    return [int(p * n_edges) for p in percentages]


def mib_top_n(layout: MibLayout, values: torch.Tensor, n: int, absolute: bool) -> torch.Tensor:
    """`[n_edges]` bool: the top `n` edges by score (|score| when `absolute`), ties in the order
    of MIB's flattened matrix."""
    key = values.abs() if absolute else values
    by_matrix = torch.argsort(layout.flat_position)
    ranked = by_matrix[torch.argsort(key[by_matrix], descending=True, stable=True)]
    keep = torch.zeros(values.numel(), dtype=torch.bool)
    keep[ranked[:n]] = True
    return keep


def _destination_owner(graph: Graph) -> torch.Tensor:
    """For each edge, the source index of the node its destination belongs to (-1 for logits)."""
    owner = torch.tensor([graph.src_index.get(graph.destination_node(d), -1) for d in graph.destinations])
    return owner[graph.edge_dst]


def mib_prune(graph: Graph, keep: torch.Tensor) -> torch.Tensor:
    """The circuit left after MIB's `Graph.prune`: repeatedly drop nodes lacking an incoming or
    an outgoing edge (the input counts as having incoming; logits always stays) and the edges
    of dropped nodes, until nothing changes."""
    keep = keep.clone()
    owner = _destination_owner(graph)
    while True:
        outgoing = torch.zeros(graph.n_sources, dtype=torch.bool)
        outgoing[graph.edge_src[keep]] = True
        incoming = torch.zeros(graph.n_sources, dtype=torch.bool)
        owners = owner[keep]
        incoming[owners[owners >= 0]] = True
        incoming[0] = True
        nodes = outgoing & incoming
        child_kept = (owner < 0) | nodes[owner.clamp(min=0)]
        pruned = keep & nodes[graph.edge_src] & child_kept
        if torch.equal(pruned, keep):
            return keep
        keep = pruned


def mib_areas(faithfulness: list[float], percentages: tuple[float, ...] = MIB_PERCENTAGES) -> tuple[float, float]:
    """(area under f, area under |1 - f|): trapezoids over the linear percentage axis, as MIB."""
    x = np.asarray(percentages, dtype=float)
    f = np.asarray(faithfulness, dtype=float)
    widths = np.diff(x)
    area = float(np.sum(widths * (f[1:] + f[:-1]) / 2))
    distance = np.abs(1.0 - f)
    return area, float(np.sum(widths * (distance[1:] + distance[:-1]) / 2))


def mib_curves(graph: Graph, values: torch.Tensor, mean_metric: MeanMetric) -> MibScores:
    """CPR and CMD of the ranking `values` (one score per edge), with `mean_metric` mapping
    `[n_circuits, n_edges]` bool circuits to their metric averaged over examples. Each distinct
    circuit is evaluated once (the two rankings often share circuits)."""
    layout = MibLayout(graph)
    counts = mib_edge_counts(graph.n_edges)
    circuits: dict[bool, list[torch.Tensor]] = {
        absolute: [mib_prune(graph, mib_top_n(layout, values, n, absolute)) for n in counts]
        for absolute in (False, True)
    }
    rows = [torch.ones(graph.n_edges, dtype=torch.bool), torch.zeros(graph.n_edges, dtype=torch.bool)]
    unique = {row.numpy().tobytes(): i for i, row in enumerate(rows)}  # the full and the empty circuit
    for keep in circuits[False] + circuits[True]:
        signature = keep.numpy().tobytes()
        if signature not in unique:
            unique[signature] = len(rows)
            rows.append(keep)
    metric = np.asarray(mean_metric(torch.stack(rows)), dtype=float)
    model, empty = float(metric[0]), float(metric[1])

    def curve(absolute: bool) -> list[float]:
        kept = np.array([metric[unique[keep.numpy().tobytes()]] for keep in circuits[absolute]])
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero gap gives NaN, as in MIB
            return ((kept - empty) / (model - empty)).tolist()

    signed, absolute = curve(False), curve(True)
    return MibScores(
        percentages=list(MIB_PERCENTAGES),
        edges_signed=[int(keep.sum()) for keep in circuits[False]],
        faithfulness_signed=signed,
        edges_absolute=[int(keep.sum()) for keep in circuits[True]],
        faithfulness_absolute=absolute,
        cpr=mib_areas(signed)[0],
        cmd=mib_areas(absolute)[1],
        model_metric=model,
        empty_metric=empty,
    )


def mib_scores(run: DiscoveryRun, scores: EdgeScores) -> MibScores:
    """CPR and CMD of a method's ranking on its run: every circuit in CDBench's batched masked
    forward, under the run's ablation, with the task's metric."""
    graph = run.graph

    def mean_metric(circuits: torch.Tensor) -> np.ndarray:
        return per_example_metric(run, graph.to_matrix(circuits.float())).numpy().mean(1)

    return mib_curves(graph, scores.values, mean_metric)
