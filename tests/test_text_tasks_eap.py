"""The EAP-IG / EAP-GP text tasks (sva, country-capital, hypernymy, gendered-pronoun), offline:
random GPT-2 weights plus a word-level tokenizer over every word the tasks use."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.runtime import MaskedRuntime
from tasks import country_capital, gendered_pronoun, hypernymy, sva
from tasks._text import TaskInputError
from tests.word_tokenizer import random_model_with, token_id, without_words, word_level_tokenizer

MODULES = (sva, country_capital, hypernymy, gendered_pronoun)
IDS = [module.NAME for module in MODULES]


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def task_texts(drop: tuple[str, ...] = ()) -> list[str]:
    """Every word the four tasks use (templates, word lists, answers), minus the words in `drop`."""
    texts = [*strings([sva.DATA, country_capital.DATA, hypernymy.DATA]), "he she"]
    texts += [*gendered_pronoun.TEMPLATES, *gendered_pronoun.MALE_NAMES, *gendered_pronoun.FEMALE_NAMES]
    return without_words(texts, drop)


@pytest.fixture(scope="module")
def tokenizer():
    return word_level_tokenizer(task_texts())


@pytest.fixture(scope="module")
def model(tokenizer) -> HookedTransformer:
    return random_model_with(tokenizer)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_sizes_seeds_and_alignment(module: ModuleType, tokenizer) -> None:
    a, b, c = (module.make_examples(tokenizer, 37, seed) for seed in (0, 0, 1))
    assert len(a) == 37
    assert a.to_dict() == b.to_dict()
    assert a["clean_prompt"] != c["clean_prompt"]
    for clean, corrupted, position in zip(a["clean_ids"], a["corrupted_ids"], a["position"], strict=True):
        assert len(clean) == len(corrupted) == position + 1
        assert clean[0] == corrupted[0] == tokenizer.bos_token_id
        assert clean != corrupted
        assert tokenizer.unk_token_id not in clean + corrupted


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_answers_and_distractors_are_single_known_tokens(module: ModuleType, tokenizer) -> None:
    examples = module.make_examples(tokenizer, 40, 0)
    if module is sva:
        singular, plural = sva.answer_verbs(tokenizer)
        ids = singular + plural
        assert len(singular) >= sva.MIN_ANSWER_VERBS and not set(singular) & set(plural)
    elif module is gendered_pronoun:
        ids = [*examples["answer_id"], *examples["distractor_id"]]
        assert {tokenizer.convert_ids_to_tokens(i) for i in ids} == {"he", "she"}
    else:
        ids = [i for row in [*examples["answer_ids"], *examples["distractor_ids"]] for i in row]
    assert ids and all(i not in (tokenizer.unk_token_id, tokenizer.bos_token_id) for i in ids)


def test_sva_corruption_flips_exactly_the_agreeing_words(tokenizer) -> None:
    pairs = [pair for kind in sva.DATA["nouns"].values() for pair in kind]
    pairs += [pair for kind in ("transitive", "short_vp", "long_vp") for pair in sva.DATA["verbs"][kind]]
    # The word that differs between the two forms of each noun, verb or phrase, and its number.
    number = {
        w: n
        for s, p in pairs
        for a, b in zip(s.split(), p.split(), strict=True)
        if a != b
        for n, w in enumerate((a, b))
    }
    examples = sva.make_examples(tokenizer, 200, 3)
    assert len(set(examples["group"])) == len(sva.DATA["templates"])
    assert 0.3 < sum(examples["plural"]) / len(examples) < 0.7
    for clean, corrupted, plural in zip(
        examples["clean_prompt"], examples["corrupted_prompt"], examples["plural"], strict=True
    ):
        changed = [(x, y) for x, y in zip(clean.split(), corrupted.split(), strict=True) if x != y]
        assert changed, clean
        # The last changed word is the subject (or its verb); it carries the clean number.
        assert all(number.get(x) == plural and number.get(y) == 1 - plural for x, y in changed[-1:]), (clean, corrupted)


def test_country_capital_pairs_differ_and_cycle_through_every_capital(tokenizer) -> None:
    examples = country_capital.make_examples(tokenizer, 400, 0)
    capitals = list(examples["capital"])
    usable = len(set(capitals))
    assert usable > 100 and len(set(capitals[:usable])) == usable, "each capital once before any repeats"
    assert all(a != b for a, b in zip(examples["country"], examples["corrupted_country"], strict=True))
    pairs = dict(country_capital.DATA["pairs"])
    assert all(
        pairs[country] == capital for country, capital in zip(examples["country"], examples["capital"], strict=True)
    )


def test_hypernymy_corruption_changes_the_hypernym(tokenizer) -> None:
    examples = hypernymy.make_examples(tokenizer, 100, 0)
    assert all(a != b for a, b in zip(examples["hypernym"], examples["corrupted_hypernym"], strict=True))
    for row in examples:
        assert row["hyponym"] in hypernymy.DATA["hyponyms"][row["hypernym"]]
        assert row["answer_ids"] == [token_id(tokenizer, w) for w in hypernymy.DATA["answers"][row["hypernym"]]]


def test_gendered_pronoun_corrupts_with_the_other_gender(tokenizer) -> None:
    examples = gendered_pronoun.make_examples(tokenizer, 100, 0)
    male, female = set(gendered_pronoun.MALE_NAMES), set(gendered_pronoun.FEMALE_NAMES)
    assert sum(examples["female"]) == 50, "one full cycle of 5 templates x 20 names"
    for row in examples:
        clean_set, corrupted_set = (female, male) if row["female"] else (male, female)
        assert row["name"] in clean_set and row["corrupted_name"] in corrupted_set
        assert tokenizer.convert_ids_to_tokens(row["answer_id"]) == ("she" if row["female"] else "he")


def hand_metric(module: ModuleType, tokenizer, examples, logits: torch.Tensor) -> torch.Tensor:
    """The task metric from the dataset's words and the raw logits, without the task's helpers."""
    values = []
    for i, row in enumerate(examples):
        final = logits[i, row["position"]]
        probs = torch.softmax(final, dim=-1)
        if module is gendered_pronoun:
            good, bad = ("she", "he") if row["female"] else ("he", "she")
            values.append(final[token_id(tokenizer, good)] - final[token_id(tokenizer, bad)])
            continue
        if module is sva:
            singular = {token_id(tokenizer, s) for s, _ in sva.DATA["answer_verbs"]}
            plural = {token_id(tokenizer, p) for _, p in sva.DATA["answer_verbs"]}
            good, bad = (plural, singular) if row["plural"] else (singular, plural)
        elif module is country_capital:
            good, bad = {token_id(tokenizer, row["country"])}, {token_id(tokenizer, row["corrupted_country"])}
        else:
            answers = hypernymy.DATA["answers"]
            good = [token_id(tokenizer, w) for w in answers[row["hypernym"]]]
            bad = [token_id(tokenizer, w) for w in answers[row["corrupted_hypernym"]]]
        values.append(sum(probs[t] for t in good) - sum(probs[t] for t in bad))
    return torch.stack(values)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_build_metric_and_masked_forward(module: ModuleType, model: HookedTransformer) -> None:
    """One test per task, since every GPT-2 forward counts on a CPU: the built data runs through the
    masked runtime (all edges on = the plain forward), and its metric matches a hand computation."""
    data = module.build(model, 3, 0)
    assert data.clean.shape == data.corrupted.shape and data.n_examples == 3
    assert torch.equal(data.output_positions, torch.tensor(data.dataset["position"]))
    runtime = MaskedRuntime(model)
    with torch.no_grad():
        plain = model(data.clean)
        masked = runtime.forward(
            data.clean, runtime.graph.mask(), runtime.ablate("corrupted", corrupted_tokens=data.corrupted)
        )
    torch.testing.assert_close(masked, plain, rtol=1e-4, atol=1e-4)
    expected = hand_metric(module, model.tokenizer, data.dataset, plain)
    torch.testing.assert_close(data.metric(plain), expected, rtol=1e-4, atol=1e-6)
    assert data.metric(plain).shape == (3,) and expected.abs().sum() > 0


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_refuses_a_model_without_tokenizer(module: ModuleType, model: HookedTransformer) -> None:
    tokenizer, model.tokenizer = model.tokenizer, None
    try:
        with pytest.raises(TaskInputError, match="has none") as refusal:
            module.build(model, 4, 0)
    finally:
        model.tokenizer = tokenizer
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize(
    ("module", "drop", "reason"),
    [
        (sva, tuple(w for pair in sva.DATA["answer_verbs"] for w in pair), "verb pairs"),
        (country_capital, tuple(c for c, _ in country_capital.DATA["pairs"]), "countries"),
        (hypernymy, tuple(w for words in hypernymy.DATA["answers"].values() for w in words), "hypernyms"),
        (gendered_pronoun, ("she",), "' she' is not a single token"),
        (gendered_pronoun, gendered_pronoun.FEMALE_NAMES, "female names"),
    ],
    ids=["sva-verbs", "country-names", "hypernym-answers", "pronoun", "names"],
)
def test_refuses_in_one_line_when_words_are_not_single_tokens(module: ModuleType, drop, reason: str) -> None:
    tokenizer = word_level_tokenizer(task_texts(drop))
    with pytest.raises(TaskInputError, match=reason) as refusal:
        module.make_examples(tokenizer, 4, 0)
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_task_record(module: ModuleType) -> None:
    task = module.TASK
    assert task.name == module.NAME and task.model == "gpt2"
    assert {"random:gpt2", "gpt2-medium", "gpt2-xl"} <= set(task.other_models)
    assert task.suite_ablations == ("corrupted",) and "faithfulness only" in " ".join(module.__doc__.split())
