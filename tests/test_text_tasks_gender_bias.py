"""The gender-bias text task (EAP-IG / EAP-GP), offline: random GPT-2 weights plus a word-level
tokenizer over every word the task uses."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.runtime import MaskedRuntime
from tasks import gender_bias
from tasks._text import TaskInputError
from tests.word_tokenizer import random_model_with, token_id, without_words, word_level_tokenizer

DATA = gender_bias.DATA


def task_texts(drop: tuple[str, ...] = ()) -> list[str]:
    """Every word the task uses (templates, professions, corruptions, pronouns), minus `drop`."""
    texts = [*DATA["templates"], *DATA["male"], *DATA["female"], "man woman he she"]
    return without_words(texts, drop)


@pytest.fixture(scope="module")
def tokenizer():
    return word_level_tokenizer(task_texts())


@pytest.fixture(scope="module")
def model(tokenizer) -> HookedTransformer:
    return random_model_with(tokenizer)


def test_sizes_seeds_and_alignment(tokenizer) -> None:
    a, b, c = (gender_bias.make_examples(tokenizer, 37, seed) for seed in (0, 0, 1))
    assert len(a) == 37 and sum(a["female"]) == 18
    assert a.to_dict() == b.to_dict()
    assert a["clean_prompt"] != c["clean_prompt"]
    for clean, corrupted, position in zip(a["clean_ids"], a["corrupted_ids"], a["position"], strict=True):
        assert len(clean) == len(corrupted) == position + 1
        assert clean[0] == corrupted[0] == tokenizer.bos_token_id
        assert clean != corrupted
        assert tokenizer.unk_token_id not in clean + corrupted


def test_answers_are_the_single_token_pronouns(tokenizer) -> None:
    examples = gender_bias.make_examples(tokenizer, 40, 0)
    for row in examples:
        pronouns = ("she", "he") if row["female"] else ("he", "she")
        assert tokenizer.convert_ids_to_tokens([row["answer_id"], row["distractor_id"]]) == list(pronouns)


def test_corruption_swaps_the_profession_for_the_other_gender(tokenizer) -> None:
    examples = gender_bias.make_examples(tokenizer, 2 * 17 * 29, 0)
    assert sum(examples["female"]) == 17 * 29
    assert 0.3 < sum(examples["female"][: 17 * 29]) / (17 * 29) < 0.7, "the two stereotypes are shuffled together"
    female_cases = {(r["clean_prompt"], r["profession"]) for r in examples if r["female"]}
    assert len(female_cases) == 17 * 29, "each female template x profession once before any repeats"
    for row in examples:
        professions, other = (DATA["female"], "man") if row["female"] else (DATA["male"], "woman")
        assert row["profession"] in professions and row["corrupted_word"] == other
        # The prompts differ in exactly one word: the profession, replaced by the other gender's noun.
        changed = [
            (x, y) for x, y in zip(row["clean_prompt"].split(), row["corrupted_prompt"].split(), strict=True) if x != y
        ]
        assert changed == [(row["profession"], other)]


def test_professions_that_are_not_one_token_are_dropped() -> None:
    dropped = ("nurse", "banker", "teacher")
    examples = gender_bias.make_examples(word_level_tokenizer(task_texts(dropped)), 300, 0)
    assert not set(dropped) & set(examples["profession"])
    assert len(set(examples["profession"])) > 50


def test_build_metric_and_masked_forward(model: HookedTransformer) -> None:
    """The built data runs through the masked runtime (all edges on = the plain forward), and its
    metric matches a hand computation from the words and the raw logits."""
    data = gender_bias.build(model, 3, 0)
    assert data.clean.shape == data.corrupted.shape and data.n_examples == 3
    assert torch.equal(data.output_positions, torch.tensor(data.dataset["position"]))
    runtime = MaskedRuntime(model)
    with torch.no_grad():
        plain = model(data.clean)
        masked = runtime.forward(
            data.clean, runtime.graph.mask(), runtime.ablate("corrupted", corrupted_tokens=data.corrupted)
        )
    torch.testing.assert_close(masked, plain, rtol=1e-4, atol=1e-4)
    tok = model.tokenizer
    expected = []
    for i, row in enumerate(data.dataset):
        good, bad = ("she", "he") if row["profession"] in DATA["female"] else ("he", "she")
        final = plain[i, row["position"]]
        expected.append(final[token_id(tok, good)] - final[token_id(tok, bad)])
    torch.testing.assert_close(data.metric(plain), torch.stack(expected), rtol=1e-4, atol=1e-6)
    assert data.metric(plain).shape == (3,) and torch.stack(expected).abs().sum() > 0


def test_refuses_a_model_without_tokenizer(model: HookedTransformer) -> None:
    tokenizer, model.tokenizer = model.tokenizer, None
    try:
        with pytest.raises(TaskInputError, match="has none") as refusal:
            gender_bias.build(model, 4, 0)
    finally:
        model.tokenizer = tokenizer
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        (("she",), "' she' is not a single token"),
        (("woman",), "' woman' is not a single token"),
        (tuple(DATA["female"]), "only 0 female professions"),
        (tuple(DATA["male"]), "only 0 male professions"),
    ],
    ids=["pronoun", "corruption", "female-professions", "male-professions"],
)
def test_refuses_in_one_line_when_words_are_not_single_tokens(drop, reason: str) -> None:
    tokenizer = word_level_tokenizer(task_texts(drop))
    with pytest.raises(TaskInputError, match=reason) as refusal:
        gender_bias.make_examples(tokenizer, 4, 0)
    assert "\n" not in str(refusal.value)


def test_task_record() -> None:
    task = gender_bias.TASK
    assert task.name == gender_bias.NAME == "gender-bias" and task.model == "gpt2"
    assert {"random:gpt2", "gpt2-medium", "gpt2-xl"} <= set(task.other_models)
    assert task.suite_ablations == ("corrupted",) and "faithfulness only" in " ".join(gender_bias.__doc__.split())
    assert len(DATA["templates"]) == 17 and (len(DATA["male"]), len(DATA["female"])) == (130, 29)
