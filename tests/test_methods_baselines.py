"""Exact patching and the random baseline against independent computations."""

from __future__ import annotations

from dataclasses import replace

import torch

from bench.discovery import prepare_run
from bench.runtime import MaskedRuntime
from methods import METHODS, score_edges
from tasks.base import TaskData
from tests.conftest import tiny_model
from tests.test_runtime import hook_patch_one_edge


def logit_diff_data(clean: torch.Tensor, corrupt: torch.Tensor) -> TaskData:
    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[..., -1, 3] - logits[..., -1, 7]

    return TaskData(clean, corrupt, metric, "logit diff 3 vs 7")


def test_exact_patching_equals_hook_based_patching(token_pair) -> None:
    clean, corrupt = token_pair
    model = tiny_model("ln-gelu")
    run = prepare_run(MaskedRuntime(model), logit_diff_data(clean, corrupt), "corrupted")
    run = replace(run, max_batch_tokens=5 * clean.numel())  # force several chunks
    scores = score_edges("exact-patching", run).values
    graph = run.graph
    full = run.data.metric(model(clean)).mean()
    for edge in ["input->a0.h0<q>", "a0.h3->m1", "m1->a2.h0<v>", "a2.h2->logits", graph.edge_names[-1]]:
        patched = run.data.metric(hook_patch_one_edge(model, edge, clean, corrupt)).mean()
        assert abs(scores[graph.edge_index(edge)].item() - (full - patched).item()) < 1e-4
    assert scores.abs().max() > 1e-3


def test_random_baseline_is_seeded() -> None:
    model = tiny_model()
    clean = torch.zeros(2, 4, dtype=torch.long)
    data = logit_diff_data(clean, clean)
    runtime = MaskedRuntime(model)
    a, b, c = (score_edges("random", prepare_run(runtime, data, "zero", seed=s)).values for s in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert METHODS.get("random").stochastic


def test_ranking_uses_absolute_value_unless_signed() -> None:
    from bench.discovery import EdgeScores

    scores = EdgeScores(torch.tensor([0.5, -2.0, 1.0, 0.0]))
    assert scores.ranking().tolist() == [1, 2, 0, 3]
    assert scores.ranking(signed=True).tolist() == [2, 0, 3, 1]


def test_masks_per_forward_keeps_one_layers_inputs_within_the_cpu_budget(token_pair, monkeypatch) -> None:
    """Stacking masks pays on CPU only while a layer's rebuilt q/k/v inputs stay small; the
    count is the least of the token, buffer and working-set limits, and never below one."""
    import bench.discovery

    clean, corrupt = token_pair
    model = tiny_model("ln-gelu")
    run = prepare_run(MaskedRuntime(model), logit_diff_data(clean, corrupt), "corrupted")
    tokens, cfg = clean.numel(), model.cfg
    per_mask_inputs = 3 * cfg.n_heads * tokens * cfg.d_model * 4
    monkeypatch.setattr(bench.discovery, "CPU_LAYER_INPUTS_BYTES", 7.5 * per_mask_inputs)
    assert run.masks_per_forward() == 7
    assert replace(run, max_batch_tokens=3 * tokens).masks_per_forward() == 3
    monkeypatch.setattr(bench.discovery, "CPU_LAYER_INPUTS_BYTES", 0.5 * per_mask_inputs)
    assert run.masks_per_forward() == 1
