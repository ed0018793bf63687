"""Edges for a faithful circuit: the bisection's answer against a brute-force scan over every k."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.discovery import EdgeScores, prepare_run
from bench.faithful_size import FaithfulSize, faithful_sizes, first_crossing, size_for
from bench.ground_truth import load_ground_truth
from bench.runtime import MaskedRuntime
from bench.scoring import faithfulness
from bench.zoo import load_model
from tasks import TASKS


def brute_force_curve(run, scores: EdgeScores) -> np.ndarray:
    """f(k) for every k = 0..n, each top-k circuit run on its own through the runtime, the
    ranking built here from a plain argsort (not `top_k_masks`)."""
    graph = run.graph
    order = np.argsort(-scores.values.abs().numpy(), kind="stable")

    def metric(mask: torch.Tensor) -> float:
        return float(run.data.metric(run.runtime.forward(run.data.clean, mask[None], run.ablated)).mean())

    with torch.no_grad():
        model, empty = metric(graph.mask()), metric(torch.zeros_like(graph.mask()))
        curve = [0.0]
        for k in range(1, graph.n_edges + 1):
            flat = torch.zeros(graph.n_edges)
            flat[order[:k]] = 1.0
            curve.append((metric(graph.to_matrix(flat[None])[0]) - empty) / (model - empty))
    return np.array(curve)


def check_rule(curve: np.ndarray, grid_ks: list[int], threshold: float, k: int | None, bracket) -> None:
    """The answer obeys the module's rule, checked on the full curve."""
    grid = [curve[g] for g in grid_ks]
    reaching = [g for g, v in zip(grid_ks, grid, strict=True) if v >= threshold]
    if not reaching:
        assert k is None
        return
    first = grid_ks.index(reaching[0])
    low = grid_ks[first - 1] if first > 0 else 0
    assert bracket == [low, reaching[0]]
    assert low < k <= reaching[0]
    assert curve[k] >= threshold and curve[k - 1] < threshold


@pytest.mark.parametrize("seed", range(40))
def test_first_crossing_on_non_monotone_curves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    curve = np.concatenate([[0.0], np.cumsum(rng.normal(0.01, 0.1, n))])  # a wandering, non-monotone f
    grid_ks = sorted({max(1, int(np.ceil(f * n))) for f in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)})
    calls: list[list[int]] = []

    def curve_at(ks: list[int]) -> list[float]:
        calls.append(ks)
        return [curve[k] for k in ks]

    for per_round in (1, 3, 1000):
        k, bracket = first_crossing(curve_at, grid_ks, [curve[g] for g in grid_ks], 0.5, per_round)
        check_rule(curve, grid_ks, 0.5, k, bracket)
        if k is not None and per_round == 1000:  # the whole bracket in one round: the exact smallest in it
            low, high = bracket
            assert k == next(j for j in range(low + 1, high + 1) if curve[j] >= 0.5)
    assert all(len(ks) <= 1000 for ks in calls)


def test_first_crossing_on_a_monotone_curve_is_the_global_smallest() -> None:
    curve = np.linspace(0.0, 1.0, 1001) ** 2
    grid_ks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    k, _ = first_crossing(lambda ks: [curve[j] for j in ks], grid_ks, [curve[g] for g in grid_ks], 0.9, 4)
    assert k == int(np.argmax(curve >= 0.9))


def test_nothing_reaches_the_threshold() -> None:
    assert first_crossing(lambda ks: [0.0] * len(ks), [1, 2, 4], [0.1, float("nan"), 0.5], 0.8, 2) == (None, None)


@pytest.fixture(scope="module")
def reverse_run():
    task = TASKS.get("tracr-reverse")
    model = load_model(task.model)
    return prepare_run(MaskedRuntime(model), task.build(model, 32, 0), "zero")


@pytest.mark.parametrize("ranking", ["near-truth", "random"])
def test_faithful_sizes_against_a_brute_force_scan(reverse_run, ranking: str) -> None:
    graph = reverse_run.graph
    generator = torch.Generator().manual_seed(1)
    noise = torch.rand(graph.n_edges, generator=generator)
    truth = load_ground_truth("tracr-reverse", graph).edge_mask(graph).float()
    scores = EdgeScores(truth + 0.3 * noise if ranking == "near-truth" else noise)
    faith = faithfulness(reverse_run, scores)
    curve = brute_force_curve(reverse_run, scores)
    assert np.allclose([curve[k] for k in faith.edges_kept], faith.faithfulness, atol=1e-6)
    for per_round in (2, None):
        for size in faithful_sizes(reverse_run, scores, faith, per_round=per_round):
            check_rule(curve, faith.edges_kept, size.threshold, size.edges, size.bracket)
            assert size.fraction == pytest.approx(size.edges / graph.n_edges)
    exact = faithful_sizes(reverse_run, scores, faith, thresholds=(0.9,), per_round=10_000)[0]
    low, high = exact.bracket
    assert exact.edges == next(j for j in range(low + 1, high + 1) if curve[j] >= 0.9)


def test_no_signal_has_no_size_and_old_results_read_as_none(reverse_run) -> None:
    scores = EdgeScores(torch.rand(reverse_run.graph.n_edges))
    faith = faithfulness(reverse_run, scores)

    assert faithful_sizes(reverse_run, scores, replace(faith, no_signal=True)) == [
        FaithfulSize(0.8, None, None, None),
        FaithfulSize(0.9, None, None, None),
    ]
    assert size_for({}, 0.9) == (None, None)
    assert size_for({"faithful_size": [FaithfulSize(0.9, 3, 0.5, [2, 4]).to_json()]}, 0.9) == (3, 0.5)


def test_runs_store_sizes_and_the_leaderboard_shows_them(tracr_reverse_results) -> None:
    from bench.report import leaderboard, load_results, render

    results = load_results(tracr_reverse_results)  # read back through the schema check
    board = leaderboard(results).set_index("method")
    for result in results:
        sizes = {s["threshold"]: s for s in result.evaluation["faithful_size"]}
        assert set(sizes) == {0.8, 0.9}
        faith = result.evaluation["faithfulness"]
        shown = board.loc[result.key.method, "edges for f>=0.9"]
        if sizes[0.9]["edges"] is None:
            assert faith["no_signal"] or max(faith["faithfulness"]) < 0.9
            assert np.isnan(shown)
        else:
            low, high = sizes[0.9]["bracket"]
            assert low < sizes[0.9]["edges"] <= high and shown == sizes[0.9]["edges"]
            assert sizes[0.8]["edges"] <= high
    assert "The papers' claims, checked" in render(results)


def test_older_results_without_sizes_still_load_and_bad_ones_are_named(tracr_reverse_results, tmp_path) -> None:
    import json

    from bench.report import result_row
    from bench.result_schema import ResultFileError
    from bench.results import read_result

    source = next(tracr_reverse_results.rglob("*-seed*.json"))
    data = json.loads(source.read_text())
    del data["evaluation"]["faithful_size"]
    old = tmp_path / source.name
    old.write_text(json.dumps(data))
    assert np.isnan(result_row(read_result(old))["edges for f>=0.9"])
    data["evaluation"]["faithful_size"] = [{"threshold": 0.9, "edges": "many"}]
    old.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match="faithful_size"):
        read_result(old)
