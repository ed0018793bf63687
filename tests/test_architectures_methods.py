"""Every method runs on the induction task on each family's tiny random model, through the same
path as `python -m bench run --method M --task induction --model random:<family>@tiny`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.runner import RunRequest, execute
from methods import METHODS
from tests.test_architectures import FAMILIES

SHORT = {"edge-pruning": {"steps": 20}, "subnetwork-probing": {"steps": 20}}  # the default 300 steps: slow run
# The default test run keeps one family with every modern feature (RMSNorm, gated MLP, rotary,
# grouped-query attention); the others run with the slow tests, to keep the default run short.
DEFAULT_RUN_FAMILY = "llama3"
FAST_OR_SLOW = [
    pytest.param(family, marks=() if family == DEFAULT_RUN_FAMILY else pytest.mark.slow) for family in FAMILIES
]


@pytest.mark.parametrize("family", FAST_OR_SLOW)
def test_every_method_runs_on_induction(family: str, tmp_path: Path) -> None:
    model = f"random:{family}@tiny"
    for method in (m for m in METHODS.names() if METHODS.get(m).discovers):
        request = RunRequest(method, "induction", model, n_examples=4, options=SHORT.get(method))
        result, path = execute(request, tmp_path)
        assert path.exists() and result.key.model == model
        scores = list(result.edge_scores.values())
        assert all(math.isfinite(s) for s in scores), method
        assert len(set(scores)) > 1, method  # a ranking, not a constant
        faith = result.evaluation["faithfulness"]
        assert math.isfinite(faith["faithfulness_auc"]), method


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_method_runs_on_induction_with_default_options(family: str, tmp_path: Path) -> None:
    for method in (m for m in METHODS.names() if METHODS.get(m).discovers):
        result, _ = execute(RunRequest(method, "induction", f"random:{family}@tiny", n_examples=8), tmp_path)
        assert all(math.isfinite(s) for s in result.edge_scores.values()), method
