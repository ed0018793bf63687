"""The built-in Tracr programs are the RASP files in `bench.zoo.tracr_programs`: their names come
from the directory, and a new file there is a new built-in model and task, nothing else needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import ground_truth
from bench.cli import main
from bench.graph import Graph
from bench.ground_truth import load_ground_truth
from bench.zoo import load_model, model_names, model_status, tracr_programs
from bench.zoo.rasp_files import load_rasp_file
from bench.zoo.tracr_programs import PROGRAM_DIR, load_program, program_names
from tasks import TASKS
from tasks.tracr_tasks import builtin_tracr_tasks

HIST = '''"""Histogram of the tokens over {a, b}: a third built-in program, for the test only."""

from tracr.compiler import lib
from tracr.rasp import rasp

VOCAB = ("a", "b")
MAX_SEQ_LEN = 3
DESCRIPTION = "how often each token occurs, over {a,b}, lengths 1-3"


def make_program() -> rasp.SOp:
    return lib.make_hist()
'''


def test_the_built_in_names_are_the_files_in_the_program_directory() -> None:
    stems = sorted(p.stem for p in PROGRAM_DIR.glob("*.py") if p.name != "__init__.py")
    assert program_names() == tuple(stems) == ("reverse", "xproportion")
    names = [f"tracr-{stem}" for stem in stems]
    assert [name for name in model_names() if name.startswith("tracr-")] == names
    assert [name for name in TASKS if name.startswith("tracr-")] == names
    assert all(TASKS.get(name).model == name for name in names)


def test_a_built_in_program_is_read_like_a_users_file() -> None:
    """The loader of `--task PATH.py` reads the built-in files to the very same program."""
    reverse = load_program("reverse")
    again = load_rasp_file(PROGRAM_DIR / "reverse.py", default_source=reverse.source)
    assert (again.vocab, again.max_seq_len, again.compiler_bos) == ((1, 2, 3), 5, "BOS")
    assert (again.n_examples, again.description, again.citation) == (363, reverse.description, reverse.citation)
    assert load_program("xproportion").vocab == ("w", "x", "y", "z")
    with pytest.raises(ValueError, match="unknown tracr program 'nope'; valid choices: reverse, xproportion"):
        load_program("nope")


def test_a_new_file_is_a_new_built_in_model_task_and_ground_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy the program directory, add one file: the zoo, the task list and `bench ground-truth
    derive` all know `tracr-hist` without any other change."""
    programs = tmp_path / "programs"
    shutil.copytree(PROGRAM_DIR, programs)
    (programs / "hist.py").write_text(HIST)
    monkeypatch.setattr(tracr_programs, "PROGRAM_DIR", programs)
    assert "tracr-hist" in model_names() and model_status("tracr-hist").kind == "tracr"

    (task,) = [t for t in builtin_tracr_tasks() if t.name == "tracr-hist"]
    assert (task.model, task.default_examples) == ("tracr-hist", 2 + 4 + 8)  # the whole domain
    assert task.description.startswith("how often each token occurs")
    model = load_model("tracr-hist")
    data = task.build(model, task.default_examples, 0)
    assert data.clean.shape == (14, 4)

    # `bench ground-truth derive tracr-hist` writes its file beside the others (here: a temporary checkout)
    list(TASKS)  # the registry is loaded; the new task joins it for this test only
    monkeypatch.setitem(TASKS._items, task.name, task)
    monkeypatch.setattr(ground_truth, "checkout_root", lambda: tmp_path)
    (tmp_path / "ground_truth").mkdir()
    assert main(["ground-truth", "derive", "tracr-hist"]) == 0
    truth = load_ground_truth("tracr-hist", Graph.from_model(model), tmp_path / "ground_truth")
    assert truth.edges and set(truth.detectable) == set(task.ablations)
