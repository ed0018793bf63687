"""The tracr tasks: deterministic aligned data on which the full model is far from the corrupted run."""

from __future__ import annotations

import pytest
import torch

from bench.zoo import load_model
from tasks import TASKS


@pytest.mark.parametrize("name", ["tracr-reverse", "tracr-xproportion"])
def test_data_is_seeded_aligned_and_meaningful(name: str) -> None:
    task = TASKS.get(name)
    model = load_model(task.model)
    a, b, c = (task.build(model, 64, seed) for seed in (0, 0, 1))
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(a.clean, c.clean)
    assert a.clean.shape == a.corrupted.shape == (64, 6)
    assert (a.clean != a.corrupted).any(dim=1).all(), "every corruption differs from its clean input"
    assert (a.clean[:, 0] == a.clean[0, 0]).all(), "BOS first"
    with torch.no_grad():
        full = a.metric(model(a.clean)).mean()
        corrupted = a.metric(model(a.corrupted)).mean()
    assert full.abs() < 1e-6
    assert corrupted < -0.1, "the corrupted run must be far from the full model on the metric"


def test_reverse_uses_the_whole_domain_by_default() -> None:
    task = TASKS.get("tracr-reverse")
    data = task.build(load_model(task.model), task.default_examples, 0)
    assert len({tuple(row) for row in data.clean.tolist()}) == 243
