"""Scoring: faithfulness curves and areas, and ground-truth recovery, against hand computations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.discovery import DiscoveryRun, EdgeScores, prepare_run
from bench.ground_truth import load_ground_truth
from bench.runtime import MaskedRuntime
from bench.scoring import (
    FRACTIONS,
    _areas,
    faithfulness,
    gap_signal,
    ground_truth_recovery,
    node_scores,
    recovery,
)
from bench.zoo import load_model
from tasks import TASKS
from tasks.base import Metric


@pytest.fixture(scope="module")
def reverse_run():
    task = TASKS.get("tracr-reverse")
    model = load_model(task.model)
    runtime = MaskedRuntime(model)
    return prepare_run(runtime, task.build(model, 64, 0), "zero")


def test_recovery_metrics_by_hand() -> None:
    labels = np.array([1, 0, 1, 0, 0])
    values = np.array([0.9, 0.8, 0.1, 0.05, 0.0])
    got = recovery(labels, values)
    # top-2 = items 0 and 1: one hit
    assert got["precision_at_k"] == got["recall_at_k"] == got["f1_at_k"] == 0.5
    # positives at ranks 1 and 3 of 5: 5 of 6 positive/negative pairs are ordered right
    assert got["roc_auc"] == pytest.approx(5 / 6)
    assert got["average_precision"] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_areas_of_known_curves() -> None:
    fractions = np.array(FRACTIONS)
    auc, cpr, cmd = _areas(fractions, np.ones(len(fractions)))
    assert auc == pytest.approx((0.5 + 9) / 10)
    assert cpr == pytest.approx(1 - 0.0005)
    assert cmd == pytest.approx(0.0005)
    auc, cpr, cmd = _areas(fractions, fractions.copy())  # f(x) = x
    assert cpr == pytest.approx(0.5)
    assert cmd == pytest.approx(0.5)


def test_ground_truth_against_itself_and_reversed(reverse_run) -> None:
    graph = reverse_run.graph
    truth = load_ground_truth("tracr-reverse", graph)
    perfect = EdgeScores(truth.edge_mask(graph).float() + 0.01 * torch.rand(graph.n_edges))
    worst = EdgeScores(
        -perfect.values,
    )
    best = ground_truth_recovery(graph, perfect, truth, "zero", signed=True)
    assert best["full"]["edge"]["roc_auc"] == 1.0 and best["full"]["edge"]["precision_at_k"] == 1.0
    assert best["full"]["node"]["roc_auc"] == 1.0
    assert ground_truth_recovery(graph, worst, truth, "zero", signed=True)["full"]["edge"]["roc_auc"] == 0.0
    assert best["detectable"]["edge"]["n_positive"] == len(truth.detectable["zero"])


def test_node_scores_take_the_largest_touching_edge(reverse_run) -> None:
    graph = reverse_run.graph
    values = torch.zeros(graph.n_edges)
    values[graph.edge_index("m1->m2")] = -3.0
    values[graph.edge_index("input->m2")] = 1.0
    nodes = node_scores(graph, values)
    assert nodes["m1"] == 3.0 and nodes["m2"] == 3.0 and nodes["input"] == 1.0 and nodes["a3.h0"] == 0.0


@torch.no_grad()
def test_faithfulness_matches_direct_masked_forwards(reverse_run) -> None:
    graph, runtime = reverse_run.graph, reverse_run.runtime
    scores = EdgeScores(torch.linspace(1, 0, graph.n_edges))  # ranking = graph order
    result = faithfulness(reverse_run, scores)
    assert result.faithfulness[-1] == pytest.approx(1.0, abs=1e-9)

    def metric_of(mask: torch.Tensor) -> float:
        return reverse_run.objective(runtime.forward(reverse_run.data.clean, mask, reverse_run.ablated)).item()

    full, empty = metric_of(graph.mask()), metric_of(torch.zeros_like(graph.mask()))
    k = result.edges_kept[6]
    keep = torch.zeros(graph.n_edges)
    keep[:k] = 1
    expected = (metric_of(graph.to_matrix(keep)) - empty) / (full - empty)
    assert result.faithfulness[6] == pytest.approx(expected, abs=1e-6)
    assert result.model_metric == pytest.approx(full, abs=1e-6) and result.empty_metric == pytest.approx(
        empty, abs=1e-5
    )
    low, high = result.faithfulness_auc_ci
    assert low <= result.faithfulness_auc <= high


def test_exact_patching_is_more_faithful_than_random_on_tracr(reverse_run) -> None:
    from methods import score_edges

    exact = faithfulness(reverse_run, score_edges("exact-patching", reverse_run))
    rand = faithfulness(reverse_run, score_edges("random", reverse_run))
    assert exact.faithfulness_auc > rand.faithfulness_auc + 0.2


def test_gap_rule_on_known_gaps() -> None:
    """No signal when the gap's bootstrap interval contains 0, the gap is 0 or NaN, or n = 1."""
    rng = np.random.default_rng(0)
    resamples = [rng.integers(0, 200, 200) for _ in range(200)]
    noise = rng.normal(0.0, 1e-3, 200)  # tiny per-example gaps of both signs
    assert (noise > 0).any() and (noise < 0).any()
    gap, (low, high), no_signal = gap_signal(noise, resamples)
    assert no_signal and low < 0 < high and gap == pytest.approx(noise.mean())
    assert not gap_signal(noise + 0.01, resamples)[2], "a gap of 10 sigma / sqrt(n) is a signal"
    assert not gap_signal(-(noise + 0.01), resamples)[2], "a negative gap is a signal too"
    assert not gap_signal(np.full(200, 1e-9), resamples)[2], "tiny but consistent is still a signal"
    assert gap_signal(np.zeros(200), resamples)[2]
    assert gap_signal(np.array([0.0] * 199 + [np.nan]), resamples)[2]
    assert gap_signal(np.array([5.0]), [np.zeros(1, dtype=int)] * 10)[2], "one example: no spread to judge"


def _with_metric(run: DiscoveryRun, metric: Metric) -> DiscoveryRun:
    return replace(run, data=replace(run.data, metric=metric))


def test_identical_clean_and_corrupted_inputs_have_no_signal(reverse_run) -> None:
    data = replace(reverse_run.data, corrupted=reverse_run.data.clean)
    run = prepare_run(reverse_run.runtime, data, "corrupted")
    result = faithfulness(run, EdgeScores(torch.rand(run.graph.n_edges)))
    assert result.gap == 0.0 and result.gap_ci == (0.0, 0.0) and result.no_signal


def test_noise_gaps_have_no_signal_and_a_real_tracr_run_has(reverse_run) -> None:
    """A metric scaled per example by tiny random signs has gaps that are noise around 0."""
    from methods import score_edges

    scores = score_edges("exact-patching", reverse_run)
    real = faithfulness(reverse_run, scores)
    assert not real.no_signal and real.gap_ci[0] > 0
    assert real.gap == pytest.approx(real.model_metric - real.empty_metric)
    gen = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (reverse_run.data.n_examples,), generator=gen).double() * 2 - 1
    metric = reverse_run.data.metric
    noisy = _with_metric(reverse_run, lambda logits: 1e-3 * signs.to(logits.dtype) * metric(logits))
    flagged = faithfulness(noisy, scores)
    assert flagged.no_signal and flagged.gap_ci[0] < 0 < flagged.gap_ci[1]
    assert abs(flagged.gap) < 1e-3 * abs(real.gap)
