"""Stability: resampled metrics against the task's own metric in place, the agreements against
closed forms, identical resamples of a deterministic method agreeing perfectly, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.discovery import prepare_run
from bench.report_stability import stability_html
from bench.resample import resample_data
from bench.result_schema import ResultFileError
from bench.runtime import MaskedRuntime
from bench.stability import Agreement, bootstrap_indices, load_stabilities, measure, rank_correlation, top_k_jaccard
from bench.zoo import load_model
from methods import METHODS
from tasks import TASKS


@pytest.fixture(scope="module")
def reverse():
    task = TASKS.get("tracr-reverse")
    model = load_model(task.model)
    return MaskedRuntime(model), task.build(model, 24, 0)


def test_resampled_metric_is_the_task_metric_of_the_drawn_examples(reverse) -> None:
    runtime, data = reverse
    with torch.no_grad():
        logits = runtime.model(data.clean)
    noisy = torch.stack([logits, logits + torch.randn_like(logits)])  # a leading mask dimension
    indices = torch.tensor([3, 3, 0, 23, 3, 7, 0])
    drawn = resample_data(data, indices)
    assert torch.equal(drawn.clean, data.clean[indices]) and drawn.n_examples == 7
    expected = data.metric(noisy)[:, indices]  # the task's metric on all examples, then picked
    assert torch.allclose(drawn.metric(noisy[:, indices]), expected)
    leaf = noisy[:, indices].clone().requires_grad_()
    drawn.metric(leaf).sum().backward()  # methods differentiate through the metric
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_bad_indices_are_refused(reverse) -> None:
    with pytest.raises(ValueError, match="below 24"):
        resample_data(reverse[1], torch.tensor([0, 24]))


def test_agreements_against_closed_forms() -> None:
    a, b = np.array([5.0, 4, 3, 2, 1]), np.array([1.0, 4, 3, 2, 5])
    assert top_k_jaccard(a, b, 2) == pytest.approx(1 / 3)  # {0, 1} vs {4, 1}
    assert top_k_jaccard(a, -a, 3) == 1.0  # ranked by |score|
    d = np.array([4, 0, 0, 0, -4])  # rank differences
    assert rank_correlation(a, b) == pytest.approx(1 - 6 * (d**2).sum() / (5 * (25 - 1)))
    assert np.isnan(rank_correlation(np.zeros(4), np.zeros(4)))  # all ties: no order to compare
    assert np.isnan(Agreement.of([float("nan")] * 3).mean)
    agreement = Agreement.of([0.0, 1.0, 1.0, 1.0])
    assert agreement.mean == 0.75 and agreement.low == pytest.approx(0.075) and agreement.high == 1.0


def test_bootstrap_indices_are_seeded_resamples() -> None:
    first, again = bootstrap_indices(10, 3, 7), bootstrap_indices(10, 3, 7)
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1]) and all(len(x) == 10 and x.max() < 10 for x in first)


def scorer(runtime, method: str):
    spec = METHODS.get(method)

    def score(examples, seed: int) -> np.ndarray:
        run = prepare_run(runtime, examples, "zero", seed, spec.resolve_options(None))
        return spec.func(run).values.double().numpy()

    return score


def test_identical_resamples_of_a_deterministic_method_agree_perfectly(reverse) -> None:
    runtime, data = reverse
    same = [torch.arange(data.n_examples)] * 3
    score = scorer(runtime, "exact-patching")
    assert np.ptp(score(data, 0)) > 0  # a real ranking, not all ties
    (jaccard, spearman), seeded, _ = measure(score, data, same, None, 5, progress=lambda _: None)
    assert (jaccard.mean, jaccard.low, spearman.mean, spearman.low) == (1.0, 1.0, 1.0, 1.0) and seeded is None


def test_seeds_of_a_random_method_disagree(reverse) -> None:
    runtime, data = reverse
    same = [torch.arange(data.n_examples)] * 2
    _, seeded, _ = measure(scorer(runtime, "random"), data, same, [0, 1, 2], 13, progress=lambda _: None)
    jaccard, spearman = seeded
    assert jaccard.pairs == 3 and jaccard.mean < 0.9 and abs(spearman.mean) < 0.5


def test_near_ties_at_the_top_k_boundary_are_found_and_their_jaccard_left_unguarded() -> None:
    """Closed forms: |scores| 5, 3, 3 (exact tie: safe), 1 + 1e-7 vs 1 (a near-tie), clear gaps."""
    from bench.regression import stability_payload
    from bench.stability import NEAR_TIE_MARGIN, Stability, boundary_margin, smallest_near_tie

    assert boundary_margin(np.array([5.0, -3.0, 3.0]), 2) == 0.0
    assert boundary_margin(np.array([5.0, 1.0 + 1e-7, -1.0]), 2) == pytest.approx(1e-7 / (1 + 1e-7))
    assert boundary_margin(np.array([4.0, 2.0, 1.0]), 1) == 0.5
    assert boundary_margin(np.array([4.0, 2.0]), 2) == math.inf and boundary_margin(np.zeros(3), 1) == math.inf
    near = [np.array([4.0, 2.0, 1.0]), np.array([5.0, 1.0 + 1e-7, -1.0]), np.array([5.0, -3.0, 3.0])]
    assert smallest_near_tie(near, 2) == pytest.approx(1e-7, rel=1e-6)
    assert smallest_near_tie([np.array([5.0, -3.0, 3.0])], 2) is None

    one = Agreement(1.0, 1.0, 1.0, 3)
    base = dict(method="eap", task="t", model="m", ablation="zero", n_examples=8, bootstrap=3, seed=0, k=2)
    fragile = Stability(**base, k_rule="r", jaccard=one, spearman=one, top_k_margin=NEAR_TIE_MARGIN / 10)
    clear = Stability(**base, k_rule="r", jaccard=one, spearman=one, top_k_margin=NEAR_TIE_MARGIN * 10)
    payload = stability_payload({"a": fragile, "b": clear})
    assert "jaccard" not in payload["a"] and payload["a"]["spearman"] == 1.0
    assert "could swap" in str(payload["a"]["jaccard_not_guarded"])
    assert payload["b"]["jaccard"] == 1.0 and "jaccard_not_guarded" not in payload["b"]


def test_check_allows_a_deterministic_spearman_float_noise_but_not_a_real_change() -> None:
    from bench.regression import STABILITY_SPEARMAN_TOLERANCE, compare, stability_payload
    from bench.stability import Stability

    def cell(spearman: float) -> Stability:
        agree = Agreement(spearman, spearman, spearman, 3)
        one = Agreement(1.0, 1.0, 1.0, 3)
        base = dict(method="eap", task="t", model="m", ablation="zero", n_examples=8, bootstrap=3, seed=0, k=2)
        return Stability(**base, k_rule="r", jaccard=one, spearman=agree, top_k_margin=None)

    baseline = stability_payload({"c": cell(0.9235)})
    assert compare([], baseline, {"c": cell(0.9235 - STABILITY_SPEARMAN_TOLERANCE / 2)}) == []
    (moved,) = compare([], baseline, {"c": cell(0.9235 - 2 * STABILITY_SPEARMAN_TOLERANCE)})
    assert moved.metric == "spearman" and "0.001" in moved.reason
    lower_jaccard = dataclasses.replace(cell(0.9235), jaccard=Agreement(0.9998, 0.9998, 0.9998, 3))
    (jaccard,) = compare([], baseline, {"c": lower_jaccard})  # Jaccard keeps the 1e-4 tolerance
    assert jaccard.metric == "jaccard"


def test_cli_writes_the_json_and_refuses_bad_input(tmp_path, capsys) -> None:
    args = ["stability", "--method", "eap", "--task", "tracr-reverse", "--examples", "16", "--ablation", "zero"]
    assert main([*args, "--bootstrap", "1", "--out-dir", str(tmp_path)]) == 2
    assert "--bootstrap must be an integer of at least 2" in capsys.readouterr().err
    assert main(["stability", "--method", "nope", "--task", "tracr-reverse"]) == 2
    assert main([*args, "--bootstrap", "2", "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.rglob("stability-*.json")
    assert not list(tmp_path.rglob("*-seed*.json"))  # never mistaken for a run result
    written = json.loads(path.read_text())
    assert written["bootstrap"] == 2 and written["jaccard"]["pairs"] == 1 and 0.0 <= written["jaccard"]["mean"] <= 1.0
    (loaded,) = load_stabilities(tmp_path)
    assert loaded.to_json() == written
    section = stability_html([loaded])
    assert "<h2>Stability</h2>" in section and f"{loaded.jaccard.mean:.3f} [" in section
    path.write_text("{}")
    with pytest.raises(ResultFileError, match="not a stability file"):
        load_stabilities(tmp_path)
