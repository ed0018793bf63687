"""Which circuit a drawing of a run shows: the ranking's top-k edges at a k chosen by one stated
rule, each marked against the ground truth, read from the result file alone.

The rule for the k drawn first:
- with a ground truth for the run's task and model: k = |ground truth| (the full circuit; the
  k at which the leaderboard's precision@k and recall@k are measured);
- without one: the smallest k on the run's faithfulness grid with f(k) >= 0.9;
- when no grid point reaches 0.9, or the run has no signal: k = `FALLBACK_K` (or every edge of
  a smaller graph).
The ranking is the scoring's: |score| descending, ties in graph order, so the drawing at
k = |ground truth| has exactly the hits the result's precision@k counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from bench.graph import Graph
from bench.ground_truth import GroundTruth, has_ground_truth, load_ground_truth
from bench.results import RunResult, variant_text

FAITHFUL_ENOUGH = 0.9
FALLBACK_K = 20
MIN_EMBEDDED = 200
MAX_EMBEDDED = 2000
"""Edges a view carries beyond its k (so a slider can move): max(2 |ground truth|, k,
`MIN_EMBEDDED`), never more than `MAX_EMBEDDED` (GPT-2 small's IOI circuit has 963 edges)."""

Truth = Literal["", "detectable", "undetectable"]
EdgeClass = Literal["tp", "fp", "missed", "missed-undetectable", "chosen"]
EDGE_CLASSES: tuple[EdgeClass, ...] = ("tp", "fp", "missed", "missed-undetectable", "chosen")


@dataclass(frozen=True)
class ViewEdge:
    """One edge as drawn.

    Attributes:
        src, dst: the component nodes it joins (`a2.h3`, not `a2.h3<q>`).
        port: "q", "k" or "v" for an attention input, "" otherwise.
        rank: its 0-based position in the ranking.
        truth: "" outside the ground truth; "detectable" inside it (also when no detectable set
            is recorded for the run's ablation); "undetectable" inside it but invisible to every
            method under the run's ablation.
    """

    name: str
    src: str
    dst: str
    port: str
    score: float
    rank: int
    truth: Truth

    def edge_class(self, k: int, has_truth: bool) -> EdgeClass | None:
        """How the edge is drawn at `k`, or None when it is not drawn."""
        if self.rank < k:
            return ("tp" if self.truth else "fp") if has_truth else "chosen"
        if self.truth:
            return "missed" if self.truth == "detectable" else "missed-undetectable"
        return None


@dataclass(frozen=True)
class CircuitView:
    """A run's ranking, ready to draw at any k from 1 to `max_k`.

    Attributes:
        edges: the top `max_k` edges, then every ground-truth edge ranked below them, by rank.
        k: the k the rule picks (module docstring); `rule` says which rule and why.
        n_truth: |ground truth| (0 without one); n_detectable: its part detectable under the
            run's ablation (equal to `n_truth` when none is recorded).
    """

    result: RunResult
    graph: Graph
    edges: tuple[ViewEdge, ...]
    max_k: int
    k: int
    rule: str
    n_truth: int
    n_detectable: int

    @property
    def has_truth(self) -> bool:
        return self.n_truth > 0

    @property
    def title(self) -> str:
        key = self.result.key
        variant = variant_text(self.result.variant)
        return f"{key.method}{f' ({variant})' if variant else ''} · seed {key.seed}"

    @property
    def setting(self) -> str:
        key = self.result.key
        return f"{key.task} · {key.model} · {key.ablation} ablation"

    def drawn(self, k: int) -> list[tuple[ViewEdge, EdgeClass]]:
        """The edges drawn at `k` with their classes: the top k, and the ground truth's missed edges."""
        self.check_k(k)
        drawn = [(edge, edge.edge_class(k, self.has_truth)) for edge in self.edges]
        return [(edge, cls) for edge, cls in drawn if cls is not None]

    def counts(self, k: int) -> dict[EdgeClass, int]:
        counts = dict.fromkeys(EDGE_CLASSES, 0)
        for _, cls in self.drawn(k):
            counts[cls] += 1
        return counts

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise ValueError(f"k={k} is out of range; valid: 1 to {self.max_k} for this run")

    @cached_property
    def max_abs_score(self) -> float:
        return max((abs(edge.score) for edge in self.edges), default=0.0)


def rule_k(result: RunResult, n_edges: int, n_truth: int) -> tuple[int, str]:
    """The k drawn first and the rule that chose it, in words (module docstring)."""
    if n_truth:
        return n_truth, f"k = |ground truth| = {n_truth}"
    faith = result.evaluation["faithfulness"]
    fallback = min(FALLBACK_K, n_edges)
    if faith["no_signal"]:
        return fallback, f"no ground truth, and the run has no signal: k = {fallback}"
    for k, value in zip(faith["edges_kept"], faith["faithfulness"], strict=True):
        if not math.isnan(value) and value >= FAITHFUL_ENOUGH:
            return k, f"no ground truth: k = {k}, the smallest k on the faithfulness grid with f ≥ {FAITHFUL_ENOUGH}"
    return fallback, f"no ground truth, and no k on the faithfulness grid reaches f ≥ {FAITHFUL_ENOUGH}: k = {fallback}"


def run_ground_truth(result: RunResult, graph: Graph) -> GroundTruth | None:
    """The ground truth of the result's task when it is a circuit of the result's model."""
    if not has_ground_truth(result.key.task, result.key.model):
        return None
    return load_ground_truth(result.key.task, graph)


def result_graph(result: RunResult) -> Graph:
    """The result's graph, rebuilt from its edge names (no model is loaded).

    Raises:
        ValueError: the names are not exactly one graph's edges (the message names one).
    """
    return Graph.from_edge_names(result.edge_scores)


def circuit_view(result: RunResult, k: int | None = None, graph: Graph | None = None) -> CircuitView:
    """The view of `result`, starting at `k` (default: the rule's k, at most `MAX_EMBEDDED`).

    Args:
        graph: the result's graph when the caller has it already (default: `result_graph`).

    Raises:
        ValueError: `k` outside 1 .. the graph's number of edges, or edge names that are not
            one graph's.
    """
    graph = graph or result_graph(result)
    if k is not None and not 1 <= k <= graph.n_edges:
        raise ValueError(f"--k {k} is out of range; valid: 1 to {graph.n_edges} (the edges of {result.key.model})")
    truth = run_ground_truth(result, graph)
    full = set(truth.edges) if truth else set()
    ablation = result.key.ablation
    detectable = set(truth.detectable[ablation]) if truth and ablation in truth.detectable else full
    rule_value, rule = rule_k(result, graph.n_edges, len(full))
    if k is None:
        k = min(rule_value, MAX_EMBEDDED)
        if k < rule_value:
            rule += f" (drawn at {k}: a view carries at most {MAX_EMBEDDED} edges)"
    elif k != rule_value:
        rule = f"k = {k} as asked (the rule: {rule})"
    max_k = min(graph.n_edges, max(min(2 * len(full), MAX_EMBEDDED), MIN_EMBEDDED, k))
    names = graph.edge_names
    values = np.array([result.edge_scores[name] for name in names], dtype=np.float64)
    order = np.argsort(-np.abs(values), kind="stable")
    edges = []
    for rank, position in enumerate(order.tolist()):
        name = names[position]
        if rank >= max_k and name not in full:
            continue
        src, dst = name.split("->")
        port = dst[dst.index("<") + 1] if "<" in dst else ""
        in_truth: Truth = "" if name not in full else "detectable" if name in detectable else "undetectable"
        edges.append(ViewEdge(name, src, graph.destination_node(dst), port, float(values[position]), rank, in_truth))
    return CircuitView(result, graph, tuple(edges), max_k, k, rule, len(full), len(detectable))
