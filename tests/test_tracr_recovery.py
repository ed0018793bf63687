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

# Edge Pruning's CPU-sized defaults (300 steps, lr 0.1) prune reverse's length head
# (input->a0.h0<v>, a0.h0->m0) early in the sparsity ramp on the every-length data, and the
# closed gates never reopen: detectable ROC AUC 0.879 / 0.940 / 0.985 for seeds 0 / 1 / 2
# (KL 0.23 left at the end). With lr 0.05 it is 1.0 for seeds 0-2; with 600 steps 1.0 / 0.951 /
# 0.9985. Kept failing (strict), not weakened, until the defaults are decided.
EP_REVERSE = pytest.mark.xfail(strict=True, reason="edge pruning's default budget misses reverse's length head")


@pytest.mark.parametrize(
    ("method", "task_name"),
    [
        ("acdc", "tracr-reverse"),
        ("acdc", "tracr-xproportion"),
        pytest.param("edge-pruning", "tracr-reverse", marks=EP_REVERSE),
        ("edge-pruning", "tracr-xproportion"),
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
