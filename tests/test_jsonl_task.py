"""Tasks from a user's JSONL file: parsing and refusals, and the metrics against a hand
computation on a plain forward pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.runner import IncompatibleChoice, RunRequest
from tasks.base import TaskInputError
from tasks.jsonl_task import jsonl_task
from tasks.user_tasks import find_task
from tests.conftest import tiny_model
from tests.word_tokenizer import token_id, word_level_tokenizer

ROWS = [
    {"clean": "When Mary and John went out , John gave it to",
     "corrupted": "When Anna and Paul went out , Paul gave it to", "answer": " Mary", "distractor": " John"},
    {"clean": "The cat sat on the", "corrupted": "The dog sat on the", "answers": [" mat", " rug"],
     "distractors": [" floor"]},
    {"clean": "Then Paul and Anna left , Anna handed it to", "corrupted": "Then Mary and John left , John handed it to",
     "answer": " Paul", "answers": [" Mary"], "distractor": " Anna"},
]  # fmt: skip


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def tokenizer_for(rows: list[dict]):
    texts = [
        text for row in rows for key, value in row.items() for text in ([value] if isinstance(value, str) else value)
    ]
    return word_level_tokenizer(texts)


def small_model_with(tokenizer):
    """A small random LayerNorm/GELU model (the graph's tiny shape) that tokenizes with `tokenizer`."""
    model = tiny_model()
    model.tokenizer = tokenizer
    assert model.cfg.d_vocab >= len(tokenizer)
    return model


def hand_metric(model, tokenizer, row: dict, kind: str) -> float:
    """The metric of one example from a plain forward of BOS + clean prompt, written out."""
    ids = torch.tensor([[tokenizer.bos_token_id, *tokenizer.encode(row["clean"], add_special_tokens=False)]])
    with torch.no_grad():
        last = model(ids)[0, -1].double()
    answers = list(dict.fromkeys([*([row["answer"]] if "answer" in row else []), *row.get("answers", [])]))
    distractors = list(
        dict.fromkeys([*([row["distractor"]] if "distractor" in row else []), *row.get("distractors", [])])
    )
    good = [token_id(tokenizer, word.strip()) for word in answers]
    bad = [token_id(tokenizer, word.strip()) for word in distractors]
    if kind == "logit-diff":
        return float(sum(last[t] for t in good) / len(good) - sum(last[t] for t in bad) / len(bad))
    probs = torch.softmax(last, -1)
    return float(sum(probs[t] for t in good) - sum(probs[t] for t in bad))


@pytest.mark.parametrize("kind", ["logit-diff", "prob-diff"])
def test_metric_equals_a_hand_computation(kind: str, tmp_path: Path) -> None:
    tokenizer = tokenizer_for(ROWS)
    model = small_model_with(tokenizer)
    task = jsonl_task(write_jsonl(tmp_path / "pairs.jsonl", ROWS), kind)
    data = task.build(model, len(ROWS), 0)
    assert data.n_examples == 3 and data.attention_mask is not None
    with torch.no_grad():
        logits = model(data.clean, attention_mask=data.attention_mask)
    got = data.metric(logits)
    expected = [hand_metric(model, tokenizer, row, kind) for row in ROWS]
    assert got.tolist() == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_a_sample_is_seeded_and_keeps_file_order(tmp_path: Path) -> None:
    tokenizer = tokenizer_for(ROWS)
    model = small_model_with(tokenizer)
    task = jsonl_task(write_jsonl(tmp_path / "pairs.jsonl", ROWS))
    first, again = task.build(model, 2, 5), task.build(model, 2, 5)
    assert first.dataset["clean_prompt"] == again.dataset["clean_prompt"]
    order = [next(i for i, row in enumerate(ROWS) if row["clean"] == text) for text in first.dataset["clean_prompt"]]
    assert order == sorted(order) and len(order) == 2


def test_name_follows_the_content_and_the_metric(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "my pairs.jsonl", ROWS)
    name = jsonl_task(path).name
    assert name.startswith("my_pairs.jsonl@") and "/" not in name
    assert jsonl_task(path, "prob-diff").name == name + "-prob-diff"
    write_jsonl(path, ROWS[:2])
    assert jsonl_task(path).name != name
    # found by path: a copy under another name is its own task, an edited file a new one
    copy = write_jsonl(tmp_path / "copy.jsonl", ROWS[:2])
    assert find_task(str(copy)).name.startswith("copy.jsonl@")
    assert find_task(str(path)).name == jsonl_task(path).name


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not valid JSON"),
        ('["a"]', "line 1: must be a JSON object"),
        ('{"clean": "a b", "corrupted": "c d", "answer": " x"}', "line 1: needs field 'distractor'"),
        ('{"clean": "a b", "corrupted": "c d", "answer": 3, "distractor": " y"}', "field 'answer' must be a string"),
        ('{"clean": "", "corrupted": "c d", "answer": " x", "distractor": " y"}', "field 'clean' must be a non-empty"),
        ('{"clean": "a", "corrupted": "c", "answers": [], "distractor": " y"}', "'answers' must be a non-empty list"),
        ('{"clean": "a", "corrupted": "c", "answer": " x", "distractor": " x"}', "' x' is both an answer and"),
        ('{"clean": "a", "corrupted": "c", "answer": " x", "distractor": " y", "label": 1}', "unknown field 'label'"),
    ],
)
def test_bad_lines_are_named(line: str, message: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [line])
    with pytest.raises(TaskInputError, match=r"bad\.jsonl") as caught:
        jsonl_task(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_single_token_and_alignment_refusals(tmp_path: Path) -> None:
    tokenizer = tokenizer_for(ROWS)
    model = small_model_with(tokenizer)
    two_tokens = [{**ROWS[0], "answer": " Mary Anna"}]
    with pytest.raises(TaskInputError, match="not a single token"):
        jsonl_task(write_jsonl(tmp_path / "a.jsonl", two_tokens)).build(model, 1, 0)
    misaligned = [{**ROWS[0], "corrupted": ROWS[0]["corrupted"] + " out"}]
    with pytest.raises(TaskInputError, match="do not align"):
        jsonl_task(write_jsonl(tmp_path / "b.jsonl", misaligned)).build(model, 1, 0)
    too_long = [{**ROWS[1], "clean": "The cat " * 8 + "sat on the", "corrupted": "The dog " * 8 + "sat on the"}]
    with pytest.raises(TaskInputError, match=r"a prompt is 20 tokens long and model .* takes at most 16"):
        jsonl_task(write_jsonl(tmp_path / "c.jsonl", too_long)).build(model, 1, 0)


def test_a_model_without_tokenizer_is_refused_in_one_line(tmp_path: Path) -> None:
    from bench.runner import execute
    from bench.zoo.local import use_model

    path = write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    bare = use_model(tiny_model(), "bare")  # a model object from Python, without a tokenizer
    with pytest.raises(TaskInputError, match="has no tokenizer; it needs any model with a tokenizer"):
        execute(RunRequest("random", str(path), bare), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_requests_need_a_model_and_valid_options(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    with pytest.raises(IncompatibleChoice, match="has no model of its own; give one with --model"):
        RunRequest("random", str(path)).resolve()
    with pytest.raises(TaskInputError, match="unknown JSONL task metric 'kl'; valid choices: logit-diff, prob-diff"):
        find_task(str(path), {"metric": "kl"})
    with pytest.raises(TaskInputError, match=r"unknown option 'steps'.*valid choices: metric"):
        find_task(str(path), {"steps": 3})
    with pytest.raises(TaskInputError, match="does not exist"):
        find_task(str(tmp_path / "missing.jsonl"))
    key = RunRequest("random", str(path), "random:gpt2").resolve()
    assert key.task == jsonl_task(path).name
    assert find_task(key.task) is not None  # remembered by its name for the rest of the process
