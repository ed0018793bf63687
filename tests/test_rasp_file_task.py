"""Tasks from a user's RASP program file: compiled, converted, ground truth derived from the
weights and used to score a run, through the code of the built-in Tracr tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.discovery import prepare_run
from bench.ground_truth import ground_truth_path, load_ground_truth
from bench.runner import RunRequest, execute
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from tasks.base import TaskInputError
from tasks.user_tasks import find_task

HIST = """
from tracr.compiler import lib

VOCAB = {"a", "b"}
MAX_SEQ_LEN = 3


def make_program():
    return lib.make_hist()
"""

REVERSE = """
from tracr.compiler import lib
from tracr.rasp import rasp

VOCAB = (1, 2, 3)
MAX_SEQ_LEN = 5


def make_program():
    return lib.make_reverse(rasp.tokens)
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDBENCH_CACHE", str(tmp_path / "cache"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rasp_file_reports_roc_auc_against_its_derived_ground_truth(tmp_path: Path) -> None:
    path = write(tmp_path, "hist.py", HIST)
    result, _ = execute(RunRequest("exact-patching", str(path), ablation="zero"), tmp_path / "runs")
    task = find_task(str(path))
    assert result.key.task == task.name and task.name.startswith("hist.py@")
    assert result.key.model.startswith("rasp:hist@") and task.default_examples == 2 + 4 + 8
    truth_dir = task.ground_truth_dir()
    assert truth_dir == tmp_path / "cache" / "rasp" and ground_truth_path(task.name, truth_dir).exists()
    recovery = result.evaluation["ground_truth"]
    assert recovery["detectable"]["edge"]["roc_auc"] == 1.0  # exact patching sees every detectable edge
    assert 0.5 < recovery["full"]["edge"]["roc_auc"] <= 1.0


def test_ground_truth_derive_takes_a_rasp_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    path = write(tmp_path, "hist.py", HIST)
    assert main(["ground-truth", "derive", str(path)]) == 0
    written = Path(capsys.readouterr().out.strip().removeprefix("wrote "))
    assert written.parent == tmp_path / "cache" / "rasp" and json.loads(written.read_text())["task"] == written.stem


@torch.no_grad()
def test_derived_circuit_alone_reproduces_the_model(tmp_path: Path) -> None:
    """The derived ground truth is faithful: patched in alone under zero ablation it gives the
    full model's outputs, while the empty circuit does not."""
    task = find_task(str(write(tmp_path, "hist.py", HIST)))
    model = load_model(task.model)
    runtime = MaskedRuntime(model)
    data = task.build(model, task.default_examples, 0)
    run = prepare_run(runtime, data, "zero")
    truth = load_ground_truth(task.name, runtime.graph, task.ground_truth_dir())
    assert truth.model == task.model and 0 < len(truth.edges) < runtime.graph.n_edges
    real = data.output_weights[..., None]

    def change(mask: torch.Tensor) -> float:
        return float(
            (data.outputs(runtime.forward(data.clean, mask, run.ablated) - run.full_logits) * real).abs().max()
        )

    assert change(runtime.graph.to_matrix(truth.edge_mask(runtime.graph).float())) < 1e-4
    assert change(torch.zeros_like(runtime.graph.mask())) > 0.1


@pytest.mark.slow
def test_builtin_program_as_a_file_gives_the_committed_ground_truth(tmp_path: Path) -> None:
    """The same program as the built-in tracr-reverse, from a file: the same circuit and the
    same detectable sets as the committed ground_truth/tracr-reverse.json."""
    task = find_task(str(write(tmp_path, "reverse.py", REVERSE)))
    derived = json.loads(ground_truth_path(task.name, task.ground_truth_dir()).read_text())
    committed = json.loads(ground_truth_path("tracr-reverse").read_text())
    for key in ("edges", "nodes", "detectable", "shared_residual_labels"):
        assert derived[key] == committed[key], key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("VOCAB = {1, 2}\nMAX_SEQ_LEN = 3\n", "defines no make_program"),
        ("def make_program(): pass\nVOCAB = {1}\nMAX_SEQ_LEN = 3\n", "at least two distinct tokens"),
        ("def make_program(): pass\nVOCAB = {1, 2}\nMAX_SEQ_LEN = 0\n", "MAX_SEQ_LEN must be a positive integer"),
        ("def make_program(): pass\nVOCAB = {'a', 'BOS'}\nMAX_SEQ_LEN = 3\n", "BOS must be a string that is not"),
        ("import nonexistent_module\n", "importing it raised ModuleNotFoundError"),
        ("def make_program(): return 3\nVOCAB = {1, 2}\nMAX_SEQ_LEN = 3\n", "tracr cannot compile it"),
    ],
)
def test_bad_files_are_one_line(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(TaskInputError) as caught:
        find_task(str(write(tmp_path, "bad.py", text)))
    assert message in str(caught.value) and "bad.py" in str(caught.value) and "\n" not in str(caught.value)
