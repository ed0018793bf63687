"""ACDC and Edge Pruning recover the Tracr ground truth detectable under zero ablation
(the setting of the ACDC and Edge Pruning papers' Tracr experiments)."""

from __future__ import annotations

import pytest

from bench.discovery import prepare_run
from bench.ground_truth import load_ground_truth
from bench.runtime import MaskedRuntime
from bench.scoring import ground_truth_recovery
from bench.zoo import load_model
from methods import METHODS
from tasks import TASKS


@pytest.mark.parametrize("task_name", ["tracr-reverse", "tracr-xproportion"])
@pytest.mark.parametrize("method", ["acdc", "edge-pruning"])
def test_detectable_ground_truth_ranks_above_every_other_edge(method: str, task_name: str) -> None:
    task = TASKS.get(task_name)
    model = load_model(task.model)
    runtime = MaskedRuntime(model)
    spec = METHODS.get(method)
    run = prepare_run(runtime, task.build(model, task.default_examples, 0), "zero", options=spec.defaults)
    scores = spec.func(run)
    truth = load_ground_truth(task_name, runtime.graph)
    recovered = ground_truth_recovery(runtime.graph, scores, truth, "zero")["detectable"]["edge"]
    assert recovered["roc_auc"] == 1.0
    assert recovered["precision_at_k"] == 1.0
