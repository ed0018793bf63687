"""The induction model: trained to induct, its circuit identified by measurement, and the
measured heads equal to the committed ground truth."""

from __future__ import annotations

import json

import pytest
import torch

from bench.discovery import prepare_run
from bench.ground_truth import ground_truth_path, load_ground_truth
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from bench.zoo.trained import induction, shipped_card
from bench.zoo.trained.builder import induction_ground_truth
from bench.zoo.trained.recipes import InductionRecipe
from tasks import TASKS
from tests.json_close import assert_json_close


def test_shipped_card_meets_the_stated_thresholds() -> None:
    card = shipped_card(induction.NAME)
    found = card["measurements"]
    assert found["full"] >= induction.MIN_REPEAT_LOGPROB
    assert found["gt_faithfulness"] >= induction.MIN_GT_FAITHFULNESS
    assert found["previous_token_heads"] and found["induction_heads"] and found["k_composition_edges"]
    assert all(fig["passed"] for fig in card["acceptance"].values())


@pytest.mark.slow
def test_measured_heads_and_edges_equal_the_committed_ground_truth() -> None:
    model = load_model(induction.NAME)
    payload, found = induction_ground_truth(model)
    committed = json.loads(ground_truth_path(induction.TASK).read_text())
    assert_json_close({k: v for k, v in committed.items() if k != "schema_version"}, payload)
    measured = committed["source"]["measured"]
    assert measured["previous_token_heads"] == found["previous_token_heads"]
    assert measured["induction_heads"] == found["induction_heads"]
    scores = found["attention_scores"]
    for head in found["previous_token_heads"]:
        assert scores["previous_token"][head] >= induction.MIN_PREV_TOKEN_SCORE
        assert f"input->a0.h{head}<v>" in committed["edges"]
    for head in found["induction_heads"]:
        assert scores["induction"][head] >= induction.MIN_INDUCTION_SCORE
        assert f"a1.h{head}->logits" in committed["edges"]


@torch.no_grad()
def test_k_composition_edges_carry_the_behaviour_and_the_ground_truth_alone_recovers_it() -> None:
    task = TASKS.get(induction.TASK)
    model = load_model(task.model)
    runtime = MaskedRuntime(model)
    graph = runtime.graph
    data = task.build(model, task.default_examples, 0)
    run = prepare_run(runtime, data, "corrupted")
    truth = load_ground_truth(induction.TASK, graph)
    full = data.metric(run.full_logits).mean()
    empty = data.metric(runtime.forward(data.clean, torch.zeros_like(graph.mask()), run.ablated)).mean()
    alone = data.metric(runtime.forward(data.clean, graph.mask(list(truth.edges)), run.ablated)).mean()
    assert (alone - empty) / (full - empty) >= induction.MIN_GT_FAITHFULNESS
    k_edges = [e for e in truth.edges if e.endswith("<k>") and e.startswith("a0.")]
    without_k = data.metric(runtime.forward(data.clean, graph.mask() - graph.mask(k_edges), run.ablated)).mean()
    assert (full - without_k) / (full - empty) > 0.5, "patching the K-composition edges must break induction"
    assert full > -1.5 and empty < -3.5  # chance is -ln(64) = -4.16


def test_task_runs_on_any_vocabulary_and_corrupts_only_the_first_occurrence() -> None:
    task = TASKS.get(induction.TASK)
    assert task.other_models == ("redwood_attn_2l", "random:redwood_attn_2l")
    clean, corrupted = induction.repeated_sequences(8, 50_000, 0)
    half = induction.HALF
    assert clean.max() < 50_000 and torch.equal(clean[:, :half], clean[:, half:])
    assert torch.equal(corrupted[:, half:], clean[:, half:]) and (corrupted[:, :half] != clean[:, :half]).all()


def test_task_states_the_length_it_needs_instead_of_model_names(tmp_path) -> None:
    """Any model is accepted by name; one too short for the repeated sequence is refused in one
    line once loaded (the Tracr model takes 6 positions), before any result is written."""
    from bench.runner import RunRequest, execute
    from bench.suite import plan_suite
    from tasks.base import TaskInputError

    task = TASKS.get(induction.TASK)
    assert task.needs is not None and task.needs.n_ctx == 2 * induction.HALF
    request = RunRequest("random", "induction", "tracr-reverse")
    assert request.resolve().model == "tracr-reverse"
    with pytest.raises(TaskInputError, match="takes 6 positions, the task needs 24"):
        execute(request, tmp_path)
    assert not list(tmp_path.rglob("*.json"))
    paired = {(r.task, r.model) for r in plan_suite(["random"], models=["random:llama3@tiny", "tracr-reverse"])}
    assert ("induction", "random:llama3@tiny") in paired and ("induction", "tracr-reverse") not in paired


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path))
    tiny = InductionRecipe(d_model=16, n_heads=2, d_head=4, n_ctx=32, steps=6, batch_size=4)
    straight, _ = induction.train_model(tiny)
    induction.train_model(tiny, stop_after=3)
    resumed, result = induction.train_model(tiny)
    assert result.resumed_from == 3
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
