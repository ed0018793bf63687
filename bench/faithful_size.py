"""Edges needed for a faithful circuit: the smallest top-k of a ranking whose circuit reaches
faithfulness 0.8 and 0.9 (the Edge Pruning paper's headline comparison, Bhaskar et al. 2024,
Sec. 4), found by bisection over k between the faithfulness grid's points.

Faithfulness f(k) is not monotone in k in general, so "the smallest k" needs a rule. The rule
(`RULE`): take the first grid point (of `bench.scoring.FRACTIONS`) whose f reaches the
threshold t, and the grid point before it (k = 0, the empty circuit with f = 0, if none): they
bracket a crossing. Each round evaluates up to P evenly spaced k strictly inside the bracket in
one batched masked forward (P = how many masks one forward may stack) and keeps the
sub-bracket between the first evaluated k reaching t and the last evaluated k before it, until
the two ends are adjacent. The answer k has f(k) >= t and f(k - 1) < t, and lies in the first
grid bracket; when that bracket fits in one round it is exactly the smallest k in it with
f(k) >= t. A run with no signal, or whose grid never reaches t, has no answer (None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.discovery import DiscoveryRun, EdgeScores
from bench.scoring import Faithfulness, per_example_metric, top_k_masks

THRESHOLDS: tuple[float, ...] = (0.8, 0.9)
RULE = (
    "first crossing by bisection inside the first faithfulness-grid bracket: f(k) >= t and f(k-1) < t, "
    "k between the last grid point below t before the first grid point reaching t (or 0) and that point"
)


@dataclass(frozen=True)
class FaithfulSize:
    """The edges a ranking's circuit needs to reach faithfulness `threshold`.

    `edges` is None when the run has no signal or no grid point reaches the threshold;
    `bracket` is the grid bracket [low, high] the bisection searched (None then too).
    """

    threshold: float
    edges: int | None
    fraction: float | None
    bracket: list[int] | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _interior(low: int, high: int, most: int) -> list[int]:
    """Up to `most` distinct integers evenly spread strictly between `low` and `high`."""
    if high - low <= most + 1:
        return list(range(low + 1, high))
    return sorted({int(v) for v in np.linspace(low, high, most + 2)[1:-1].round()} - {low, high})


def first_crossing(
    curve_at: Callable[[list[int]], Sequence[float]],
    grid_ks: Sequence[int],
    grid_values: Sequence[float],
    threshold: float,
    per_round: int,
) -> tuple[int | None, list[int] | None]:
    """The k of `RULE` and its grid bracket; `curve_at(ks)` gives f at each k in one batch.

    NaN counts as not reaching the threshold.
    """
    reaching = [i for i, v in enumerate(grid_values) if v >= threshold]
    if not reaching:
        return None, None
    first = reaching[0]
    low, high = (grid_ks[first - 1] if first > 0 else 0), grid_ks[first]
    bracket = [int(low), int(high)]
    while high - low > 1:
        candidates = _interior(low, high, max(1, per_round))
        values = list(curve_at(candidates))
        hits = [k for k, v in zip(candidates, values, strict=True) if v >= threshold]
        if hits:
            below = [k for k in candidates if k < hits[0]]
            low, high = (below[-1] if below else low), hits[0]
        else:
            low = candidates[-1]
    return int(high), bracket


def faithful_sizes(
    run: DiscoveryRun,
    scores: EdgeScores,
    faith: Faithfulness,
    thresholds: tuple[float, ...] = THRESHOLDS,
    signed: bool = False,
    per_round: int | None = None,
) -> list[FaithfulSize]:
    """`FaithfulSize` at each threshold, reusing the grid and normalisation of `faith` (the
    run's `bench.scoring.faithfulness`), so f here is f there. `per_round` (default: as many
    masks as one forward may stack) is how many k each bisection round evaluates."""
    n_edges = run.graph.n_edges
    if faith.no_signal:
        return [FaithfulSize(t, None, None, None) for t in thresholds]
    gap = faith.model_metric - faith.empty_metric

    known: dict[int, float] = {}  # thresholds searching the same bracket share their forwards

    def curve_at(ks: list[int]) -> list[float]:
        missing = [k for k in ks if k not in known]
        if missing:
            values = per_example_metric(run, top_k_masks(run.graph, scores, missing, signed)).numpy()
            known.update(zip(missing, ((values.mean(1) - faith.empty_metric) / gap).tolist(), strict=True))
        return [known[k] for k in ks]

    sizes = []
    per_round = per_round or run.masks_per_forward()
    for t in thresholds:
        k, bracket = first_crossing(curve_at, faith.edges_kept, faith.faithfulness, t, per_round)
        sizes.append(FaithfulSize(t, k, None if k is None else k / n_edges, bracket))
    return sizes


def size_for(evaluation: dict[str, Any], threshold: float) -> tuple[int | None, float | None]:
    """(edges, fraction) recorded for `threshold` in a result's evaluation; (None, None) when the
    result predates these fields or has no answer."""
    for entry in evaluation.get("faithful_size", []):
        if entry["threshold"] == threshold:
            return entry["edges"], entry["fraction"]
    return None, None
