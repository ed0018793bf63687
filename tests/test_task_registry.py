"""Every registered task is complete and listed: its models exist, its metric and citation are
written down, its ablations are valid, and `bench list` shows it with its ground truth status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.ground_truth import has_ground_truth
from bench.runtime import ABLATION_KINDS
from bench.zoo import load_model, model_names
from tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", TASKS.names())
def test_task_is_fully_described(name: str) -> None:
    task = TASKS.get(name)
    assert task.name == name
    assert set(task.models) <= set(model_names()), f"unknown models in {task.models}"
    assert task.metric and task.citation and task.description
    assert "\n" not in task.description
    assert task.default_examples > 0
    assert set(task.ablations) <= set(ABLATION_KINDS)
    assert set(task.suite_ablations) <= set(task.ablations)


def test_bench_list_shows_every_task_with_model_size_metric_and_ground_truth() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "list", "tasks"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == set(TASKS.names())
    for name, line in lines.items():
        task = TASKS.get(name)
        assert f"model={task.model}" in line and f"n={task.default_examples}" in line
        assert f"metric: {task.metric}" in line
        assert ("no ground truth" not in line) == has_ground_truth(name, task.model)


@pytest.mark.parametrize("name", ["tracr-reverse", "tracr-xproportion", "siit-hist", "induction"])
def test_token_id_tasks_expose_their_examples_as_a_dataset(name: str) -> None:
    task = TASKS.get(name)
    data = task.build(load_model(task.model), 16, 0)
    assert data.dataset is not None and data.dataset.num_rows == data.n_examples
    assert data.dataset["clean_ids"] == data.clean.tolist()
    assert data.dataset["corrupted_ids"] == data.corrupted.tolist()
