"""ACDC and Edge Pruning recover the Tracr ground truth detectable under zero ablation
(the setting of the ACDC and Edge Pruning papers' Tracr experiments), on inputs of every length."""

from __future__ import annotations

import pytest

from bench.discovery import prepare_run
from bench.ground_truth import load_ground_truth
from bench.runtime import MaskedRuntime
from bench.scoring import ground_truth_recovery
from bench.zoo import load_model
from methods import METHODS
from tasks import TASKS


@pytest.mark.parametrize(
    ("method", "task_name"),
    [
        ("acdc", "tracr-reverse"),
        ("acdc", "tracr-xproportion"),
        # two minutes on 2 cores for reverse's 363 inputs: run by `.ci/run` (pytest -m slow)
        pytest.param("edge-pruning", "tracr-reverse", marks=pytest.mark.slow),
        pytest.param("edge-pruning", "tracr-xproportion", marks=pytest.mark.slow),
    ],
)
def test_detectable_ground_truth_ranks_above_every_other_edge(method: str, task_name: str) -> None:
    """On the default data: every length 1..5, so reverse's length chain is in the detectable set."""
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
