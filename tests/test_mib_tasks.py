"""MIB's tasks from local files in MIB's schema: MIB's pairing and filters, both file layouts, and
the one-line message when the data is missing. Written files are tiny; the tokenizer is word-level
and the model a random-weight GPT-2 (the hub's cannot be downloaded here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from tasks import TASKS
from tasks.base import TaskInputError
from tasks.mib_tasks import DATA_ENV, SOURCES, build, load_rows
from tests.word_tokenizer import random_model_with, token_id, word_level_tokenizer

IOI_ROWS = [
    {
        "prompt": "When Mary and John went to the store , John gave a drink to",
        "s2_io_flip_counterfactual": {"prompt": "When Mary and John went to the store , Mary gave a drink to"},
        "metadata": {"indirect_object": "Mary", "subject": "John", "random_c": "Anna"},
    },
    {  # dropped by MIB's filter: the random name is two tokens
        "prompt": "When Kim and Bob went home , Bob gave a book to",
        "s2_io_flip_counterfactual": {"prompt": "When Kim and Bob went home , Kim gave a book to"},
        "metadata": {"indirect_object": "Kim", "subject": "Bob", "random_c": "Anna 17"},
    },
    {
        "prompt": "Then Sara and Tom sat , Tom handed a cup to",
        "s2_io_flip_counterfactual": {"prompt": "Then Sara and Tom sat , Sara handed a cup to"},
        "metadata": {"indirect_object": "Sara", "subject": "Tom", "random_c": "Anna"},
    },
]
MCQA_ROWS = [
    {
        "prompt": "The sky is blue . What color is the sky ? A . red B . blue Answer :",
        "choices": {"label": ["A", "B"], "text": ["red", "blue"]},
        "answerKey": 1,
        "symbol_counterfactual": {
            "prompt": "The sky is blue . What color is the sky ? B . red A . blue Answer :",
            "choices": {"label": ["B", "A"], "text": ["red", "blue"]},
            "answerKey": 1,
        },
    }
]
ARITHMETIC_ROWS = [
    {
        "prompt": "Q : How much is 12 plus 13 ? A :",
        "label": 25,
        "operator": "+",
        "random_counterfactual": {"prompt": "Q : How much is 11 plus 13 ? A :", "label": 24},
    },
    {  # another operator: dropped for addition
        "prompt": "Q : How much is 12 minus 10 ? A :",
        "label": 2,
        "operator": "-",
        "random_counterfactual": {"prompt": "Q : How much is 14 minus 10 ? A :", "label": 4},
    },
    {  # no counterfactual: dropped
        "prompt": "Q : How much is 10 plus 10 ? A :",
        "label": 20,
        "operator": "+",
        "random_counterfactual": None,
    },
]


def _texts(rows: list[dict]) -> list[str]:
    return [json.dumps(row).replace('"', " ").replace("{", " ").replace("}", " ").replace(":", " : ") for row in rows]


@pytest.fixture(scope="module")
def model():
    words = [*_texts(IOI_ROWS + MCQA_ROWS + ARITHMETIC_ROWS), "A B 25 24 2 4 20 Mary John Sara Tom Kim Bob"]
    return random_model_with(word_level_tokenizer(words))


def _write(root: Path, name: str, rows: list[dict], split: str = "validation") -> None:
    folder = root / SOURCES[name].dataset
    if SOURCES[name].config:
        folder = folder / SOURCES[name].config
    folder.mkdir(parents=True)
    (folder / f"{split}.json").write_text(json.dumps(rows))


def test_ioi_pairs_and_filters_as_mib(tmp_path: Path, model) -> None:
    _write(tmp_path, "mib-ioi", IOI_ROWS)
    data = build("mib-ioi", model, 10, 0, root=tmp_path)
    tok = model.tokenizer
    assert data.dataset["clean_prompt"] == [IOI_ROWS[0]["prompt"], IOI_ROWS[2]["prompt"]]
    assert data.dataset["corrupted_prompt"] == [r["s2_io_flip_counterfactual"]["prompt"] for r in IOI_ROWS[::2]]
    assert data.dataset["answer_id"] == [token_id(tok, "Mary"), token_id(tok, "Sara")]
    assert data.dataset["distractor_id"] == [token_id(tok, "John"), token_id(tok, "Tom")]
    assert all(ids[0] == tok.bos_token_id for ids in data.dataset["clean_ids"])
    # MIB's metric: answer logit minus distractor logit at each prompt's last token
    logits = model(data.clean, attention_mask=data.attention_mask)
    got = data.metric(logits)
    for i, (position, a, d) in enumerate(
        zip(data.dataset["position"], data.dataset["answer_id"], data.dataset["distractor_id"], strict=True)
    ):
        assert got[i].item() == pytest.approx((logits[i, position, a] - logits[i, position, d]).item(), abs=1e-5)
    assert build("mib-ioi", model, 1, 0, root=tmp_path).n_examples == 1  # MIB's head(n)


def test_mcqa_and_arithmetic_pairing(tmp_path: Path, model) -> None:
    _write(tmp_path, "mib-mcqa", MCQA_ROWS)
    _write(tmp_path, "mib-arithmetic-addition", ARITHMETIC_ROWS)
    _write(tmp_path, "mib-arithmetic-subtraction", ARITHMETIC_ROWS)
    tok = model.tokenizer
    mcqa = build("mib-mcqa", model, 10, 0, root=tmp_path)
    assert mcqa.dataset["answer_id"] == [token_id(tok, "B")] and mcqa.dataset["distractor_id"] == [token_id(tok, "A")]
    addition = build("mib-arithmetic-addition", model, 10, 0, root=tmp_path)
    assert addition.dataset["clean_prompt"] == [ARITHMETIC_ROWS[0]["prompt"]]
    assert addition.dataset["answer_id"] == [token_id(tok, "25")]
    assert addition.dataset["distractor_id"] == [token_id(tok, "24")]
    subtraction = build("mib-arithmetic-subtraction", model, 10, 0, root=tmp_path)
    assert subtraction.dataset["answer_id"] == [token_id(tok, "2")]


def test_saved_datasets_folder_and_missing_data(tmp_path: Path, model, monkeypatch) -> None:
    folder = tmp_path / "ioi"
    DatasetDict({"validation": Dataset.from_list(IOI_ROWS), "train": Dataset.from_list(IOI_ROWS[:1])}).save_to_disk(
        str(folder)
    )
    assert load_rows("mib-ioi", SOURCES["mib-ioi"], "train", tmp_path).num_rows == 1
    assert build("mib-ioi", model, 10, 0, root=tmp_path).n_examples == 2
    with pytest.raises(TaskInputError, match="has no split 'test'; valid choices: validation, train"):
        load_rows("mib-ioi", SOURCES["mib-ioi"], "test", tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(TaskInputError) as err:
        TASKS.get("mib-ioi").build(model, 5, 0)
    message = str(err.value)
    assert "\n" not in message
    assert "load_dataset('mib-bench/ioi').save_to_disk(" in message and str(tmp_path / "nowhere" / "ioi") in message
    with pytest.raises(TaskInputError, match=r"mib-bench/copycolors_mcqa', '4_answer_choices'"):
        build("mib-mcqa", model, 5, 0)


def test_default_suite_includes_mib_tasks_only_with_their_data(tmp_path: Path, monkeypatch) -> None:
    from bench.suite import plan_suite

    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert "mib-ioi" not in {r.task for r in plan_suite(methods=["random"])}
    _write(tmp_path, "mib-ioi", IOI_ROWS)
    assert "mib-ioi" in {r.task for r in plan_suite(methods=["random"])}
