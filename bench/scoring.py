"""Method-agnostic scoring of an edge ranking: faithfulness curves and their areas, and
recovery of a ground-truth circuit (edge and node level). Every method is scored here.

Faithfulness of the top-k circuit C_k, with m the task metric averaged over examples:

    f(k) = (m(C_k) - m(empty)) / (m(model) - m(empty))

over a fixed grid of edge fractions, all circuits in batched masked forwards.
Areas (x = fraction of edges kept, f(0) = 0 prepended):
- `faithfulness_auc`: mean trapezoid over the grid's intervals, so each step of the
  (roughly logarithmic) grid counts equally and the sparse regime is not drowned out;
- `cpr` (circuit performance ratio) and `cmd` (circuit-model distance): the areas under
  f and |1 - f| against the linear fraction axis, in the style of MIB (Mueller et al. 2025,
  Sec. 4) but on this grid and ranking; MIB's exact computation is `bench.mib_scoring`.
Uncertainty: a percentile bootstrap over examples (the circuits' per-example metrics are
computed once and resampled).

No signal: the areas divide by the gap m(model) - m(empty). A run has no signal when that
gap is not told apart from zero by the examples: the percentile bootstrap 95% interval of
the mean per-example gap (the same resamples as the areas' intervals) contains 0. That
includes a gap of exactly 0 (or NaN) and a single example (no spread to measure, so no
evidence). Such a run's faithfulness numbers are noise over noise; the leaderboard does not
rank them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from bench.discovery import DiscoveryRun, EdgeScores
from bench.graph import Graph
from bench.ground_truth import GroundTruth

FRACTIONS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

HIGHER_IS_BETTER: dict[str, bool] = {
    "faithfulness_auc": True,
    "cpr": True,
    "cmd": False,
    "roc_auc": True,
    "average_precision": True,
    "precision_at_k": True,
    "recall_at_k": True,
    "f1_at_k": True,
    "edges_fraction_for_0.9": False,  # `bench.faithful_size`: a smaller faithful circuit is better
}
"""Whether a larger value of each score this module computes is better: the one table that
results record and `bench check` reads."""


@dataclass(frozen=True)
class Faithfulness:
    """A faithfulness curve and its areas, with bootstrap 95% intervals for the areas.

    `gap` is m(model) - m(empty), the mean of the per-example gaps, `gap_ci` its bootstrap 95%
    interval and `no_signal` whether that interval contains 0 (see the module docstring).
    """

    fractions: list[float]
    edges_kept: list[int]
    faithfulness: list[float]
    faithfulness_auc: float
    faithfulness_auc_ci: tuple[float, float]
    cpr: float
    cmd: float
    model_metric: float
    empty_metric: float
    gap: float
    gap_ci: tuple[float, float]
    no_signal: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def top_k_masks(graph: Graph, scores: EdgeScores, ks: list[int], signed: bool = False) -> torch.Tensor:
    """`[len(ks), n_sources, n_destinations]` masks keeping each top-k of the ranking."""
    order = scores.ranking(signed=signed)
    flat = torch.zeros(len(ks), graph.n_edges)
    for row, k in enumerate(ks):
        flat[row, order[:k]] = 1.0
    return graph.to_matrix(flat)


@torch.no_grad()
def per_example_metric(run: DiscoveryRun, masks: torch.Tensor) -> torch.Tensor:
    """The task metric per circuit and example, `[n_masks, n_examples]`, in chunks that fit
    `run.max_batch_tokens`."""
    per_mask = run.masks_per_forward()
    parts = [
        run.data.metric(run.runtime.forward(run.data.clean, masks[i : i + per_mask], run.ablated))
        for i in range(0, len(masks), per_mask)
    ]
    return torch.cat(parts).double()


def _areas(fractions: np.ndarray, curve: np.ndarray) -> tuple[float, float, float]:
    x = np.concatenate([[0.0], fractions])
    y = np.concatenate([[0.0], curve])
    intervals = (y[1:] + y[:-1]) / 2
    auc = float(intervals.mean())
    cpr = float(np.trapezoid(y, x))
    cmd = float(np.trapezoid(np.abs(1.0 - y), x))
    return auc, cpr, cmd


def gap_signal(gaps: np.ndarray, resamples: list[np.ndarray]) -> tuple[float, tuple[float, float], bool]:
    """The mean per-example gap m(model) - m(empty), its percentile 95% interval over the
    bootstrap `resamples` (index arrays into `gaps`), and whether the run has no signal: the
    interval contains 0, the gap is exactly 0 or NaN, or there is a single example."""
    gap = float(gaps.mean())
    means = [gaps[columns].mean() for columns in resamples] or [gap]
    low, high = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    # `not (low > 0 or high < 0)` rather than `low <= 0 <= high`, so NaN counts as no signal
    no_signal = len(gaps) < 2 or gap == 0.0 or not (low > 0.0 or high < 0.0)
    return gap, (low, high), no_signal


def faithfulness(
    run: DiscoveryRun,
    scores: EdgeScores,
    fractions: tuple[float, ...] = FRACTIONS,
    signed: bool = False,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> Faithfulness:
    """Faithfulness of the ranking's top-k circuits over `fractions` of the graph's edges."""
    graph = run.graph
    ks = [max(1, math.ceil(f * graph.n_edges)) for f in fractions]
    masks = torch.cat(
        [graph.mask()[None], torch.zeros_like(graph.mask())[None], top_k_masks(graph, scores, ks, signed)]
    )
    values = per_example_metric(run, masks).numpy()  # [2 + len(ks), n]

    def curve_of(columns: np.ndarray) -> np.ndarray:
        model, empty, circuits = values[0, columns].mean(), values[1, columns].mean(), values[2:, columns].mean(1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero gap is reported as no signal
            return (circuits - empty) / (model - empty)

    n = values.shape[1]
    full_columns = np.arange(n)
    curve = curve_of(full_columns)
    auc, cpr, cmd = _areas(np.array(fractions), curve)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, n, n) for _ in range(n_bootstrap)]
    boot = [_areas(np.array(fractions), curve_of(columns))[0] for columns in resamples]
    low, high = np.nanpercentile(boot, [2.5, 97.5]) if n > 1 else (auc, auc)
    gap, gap_ci, no_signal = gap_signal(values[0] - values[1], resamples)
    return Faithfulness(
        fractions=list(fractions),
        edges_kept=ks,
        faithfulness=curve.tolist(),
        faithfulness_auc=auc,
        faithfulness_auc_ci=(float(low), float(high)),
        cpr=cpr,
        cmd=cmd,
        model_metric=float(values[0].mean()),
        empty_metric=float(values[1].mean()),
        gap=gap,
        gap_ci=gap_ci,
        no_signal=no_signal,
    )


def node_scores(graph: Graph, edge_values: torch.Tensor) -> dict[str, float]:
    """A node's score is the largest |score| of an edge that touches it."""
    best = dict.fromkeys(graph.nodes, 0.0)
    for name, value in zip(graph.edge_names, edge_values.abs().tolist(), strict=True):
        for part in name.split("->"):
            node = graph.destination_node(part)
            best[node] = max(best[node], value)
    return best


def recovery(labels: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision and precision / recall / F1 at k = |positives|."""
    k = int(labels.sum())
    if k == 0 or k == len(labels):
        return {"n_positive": k, "roc_auc": float("nan"), "average_precision": float("nan")}
    top = np.zeros_like(labels)
    top[np.argsort(-values, kind="stable")[:k]] = 1
    hits = int((top & labels).sum())
    precision = recall = hits / k
    return {
        "n_positive": k,
        "roc_auc": float(roc_auc_score(labels, values)),
        "average_precision": float(average_precision_score(labels, values)),
        "precision_at_k": precision,
        "recall_at_k": recall,
        "f1_at_k": precision,  # precision = recall at k = |positives|, so F1 equals both
    }


def ground_truth_recovery(
    graph: Graph, scores: EdgeScores, truth: GroundTruth, ablation: str, signed: bool = False
) -> dict[str, dict[str, dict[str, float]]]:
    """Recovery of the full ground truth and of its part detectable under `ablation`,
    at edge and node level. Keys: {"full", "detectable"} -> {"edge", "node"} -> metrics."""
    values = scores.values if signed else scores.values.abs()
    node_value = node_scores(graph, values)
    report: dict[str, dict[str, dict[str, float]]] = {}
    sets = {"full": (truth.edges, None)}
    if ablation in truth.detectable:
        sets["detectable"] = (truth.detectable[ablation], ablation)
    for which, (edge_names, kind) in sets.items():
        nodes = set(graph.nodes_of(edge_names))
        node_labels = np.array([node in nodes for node in graph.nodes], dtype=int)
        report[which] = {
            "edge": recovery(truth.edge_mask(graph, kind).numpy().astype(int), values.double().numpy()),
            "node": recovery(node_labels, np.array([node_value[n] for n in graph.nodes])),
        }
    return report
