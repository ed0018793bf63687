"""The canonical text tasks (IOI, greater-than, docstring): seeded aligned data, single-token answers,
one-line refusals, metrics checked by hand, and a masked forward on the random hub architectures."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.discovery import prepare_run
from bench.runtime import MaskedRuntime
from bench.zoo import load_model
from tasks import docstring, greater_than, ioi
from tasks._text import TaskInputError
from tasks._word_lists import (
    DOCSTRING_NOUNS,
    DOCSTRING_VARIABLE_NAMES,
    GREATER_THAN_NOUNS,
    IOI_BABA_TEMPLATES,
    IOI_NAMES,
    IOI_OBJECTS,
    IOI_PLACES,
)
from tests.word_tokenizer import token_id, word_level_tokenizer

IOI_TEXTS = [*IOI_NAMES, *IOI_PLACES, *IOI_OBJECTS, *ioi.TEMPLATES]
YEAR_TEXTS = [*GREATER_THAN_NOUNS, "The lasted from the year to", *map(str, range(1100, 1800))]
GT_TEXTS = [*YEAR_TEXTS, *(f"{yy:02d}" for yy in range(100))]
ONLY_NAMES = [name for name in DOCSTRING_VARIABLE_NAMES if name not in DOCSTRING_NOUNS]
ONLY_NOUNS = [noun for noun in DOCSTRING_NOUNS if noun not in DOCSTRING_VARIABLE_NAMES]
DOC_TEXTS = [*DOCSTRING_VARIABLE_NAMES, *DOCSTRING_NOUNS, 'def self ( , ) : """ :param']

CASES = {  # task module, word-level tokenizer texts, random model
    "ioi": (ioi, IOI_TEXTS, "random:gpt2"),
    "greater-than": (greater_than, GT_TEXTS, "random:gpt2"),
    "docstring": (docstring, DOC_TEXTS, "random:attn-only-4l"),
}


@pytest.fixture(scope="module")
def models() -> dict[str, HookedTransformer]:
    return {name: load_model(name) for name in ("random:gpt2", "random:attn-only-4l")}


def tokenizer_of(task: str):
    return word_level_tokenizer(CASES[task][1])


@pytest.mark.parametrize("task", CASES)
def test_examples_are_seeded_sized_and_aligned(task: str) -> None:
    module, _, _ = CASES[task]
    tok = tokenizer_of(task)
    a, b, c = (module.make_examples(tok, 40, seed) for seed in (0, 0, 1))
    assert len(a) == 40 and a.to_dict() == b.to_dict()
    assert a["clean_prompt"] != c["clean_prompt"]
    for clean, corrupted, position in zip(a["clean_ids"], a["corrupted_ids"], a["position"], strict=True):
        assert len(clean) == len(corrupted) and position == len(clean) - 1
        assert clean != corrupted and clean[-1] == corrupted[-1]


def test_ioi_prompts_name_io_once_and_s_twice_and_the_abc_corruption_changes_exactly_those() -> None:
    tok = tokenizer_of("ioi")
    data = ioi.make_examples(tok, 60, 3)
    assert set(data["order"]) == {"BABA", "ABBA"}
    for row in data:
        clean, corrupted = row["clean_ids"], row["corrupted_ids"]
        io, s1, s2 = row["io_position"], row["s1_position"], row["s2_position"]
        assert tok.decode([clean[io]]).strip() == row["io"] and clean[s1] == clean[s2] == row["s_id"]
        assert clean[io] == row["io_id"] and row["end_position"] == row["position"]
        assert (s1 < io) == (row["order"] == "BABA") and s2 > max(io, s1)
        assert [i for i in range(len(clean)) if clean[i] != corrupted[i]] == sorted([io, s1, s2])
        new = {corrupted[io], corrupted[s1], corrupted[s2]}
        assert len(new) == 3 and not new & {row["io_id"], row["s_id"]}, "three fresh, distinct names"
        assert row["clean_prompt"].endswith(" to")


def test_ioi_templates_are_the_papers_baba_and_their_abba_twins() -> None:
    assert len(ioi.TEMPLATES) == 30 and ioi.TEMPLATES[:15] == IOI_BABA_TEMPLATES
    for baba, abba in zip(ioi.TEMPLATES[:15], ioi.TEMPLATES[15:], strict=True):
        assert baba.index("[B]") < baba.index("[A]") and abba.index("[A]") < abba.index("[B]")
        assert abba.replace("[A]", "@").replace("[B]", "[A]", 1).replace("@", "[B]", 1).replace("@", "[A]") == baba


def test_greater_than_years_follow_the_papers_rule() -> None:
    tok = tokenizer_of("greater-than")
    years = greater_than.valid_years(tok)
    # every year splits as " YY" + "yy" under this tokenizer: c02..c98 kept, then first and last dropped
    assert len(years) == 7 * 95 and years[0] == 1103 and years[-1] == 1797 and 1198 not in years
    data = greater_than.make_examples(tok, 50, 0)
    for row in data:
        assert (
            row["clean_prompt"]
            == f"The {row['noun']} lasted from the year {row['year']} to the year {row['year'] // 100}"
        )
        diff = [i for i, (a, b) in enumerate(zip(row["clean_ids"], row["corrupted_ids"], strict=True)) if a != b]
        assert diff == [row["yy_position"]] and tok.decode([row["corrupted_ids"][diff[0]]]) == "01"


def test_docstring_prompt_matches_the_rest_generator() -> None:
    tok = tokenizer_of("docstring")
    row = docstring.make_examples(tok, 1, 5)[0]
    clean = row["clean_prompt"]
    lines = clean.split("\n")
    assert lines[0] == "" and lines[1].startswith("def ") and lines[2].startswith('    """')
    args = lines[1][lines[1].index("(") + 1 : lines[1].index(")")].split(", ")
    assert args[0] == "self" and len(args) == 1 + 6 and args[-2] == row["answer"]
    assert lines[3] == "" and lines[-1] == "    :param"
    assert [line.split()[1].rstrip(":") for line in lines[4:-1]] == args[3:5]
    assert all(len(line.split()) == 4 for line in lines[4:-1]), ":param <arg>: <two words>"
    assert len(row["distractor_ids"]) == 13 and row["answer_id"] not in row["distractor_ids"]
    assert row["clean_ids"][0] == tok.bos_token_id
    assert set(args[1:]) - {row["answer"]} <= set(row["distractors"])
    corrupted_args = row["corrupted_prompt"].split("\n")[1]
    assert corrupted_args.split(", ")[1:3] == args[1:3] and row["answer"] not in corrupted_args


@pytest.mark.parametrize("task", CASES)
def test_answers_are_single_tokens(task: str) -> None:
    module, _, _ = CASES[task]
    tok = tokenizer_of(task)
    data = module.make_examples(tok, 20, 0)
    if task == "ioi":
        words = [(row["io_id"], " " + row["io"]) for row in data] + [(row["s_id"], " " + row["s"]) for row in data]
    elif task == "docstring":
        words = [(row["answer_id"], " " + row["answer"]) for row in data]
        words += [(i, " " + w) for row in data for i, w in zip(row["distractor_ids"], row["distractors"], strict=True)]
    else:
        words = list(zip(greater_than.year_token_ids(tok), (f"{yy:02d}" for yy in range(100)), strict=True))
    for word_id, word in words:
        assert tok.encode(word, add_special_tokens=False) == [word_id] and word_id != tok.unk_token_id


@pytest.mark.parametrize(
    ("task", "texts", "message"),
    [
        ("ioi", [*IOI_NAMES[:4], *IOI_PLACES, *IOI_OBJECTS, *ioi.TEMPLATES], "only 4 IOI names"),
        ("greater-than", [t for t in GT_TEXTS if not t.endswith("07")], "'07' is not a single token"),
        ("greater-than", YEAR_TEXTS[: len(GREATER_THAN_NOUNS) + 1], "only 0 years"),
        ("docstring", [*DOCSTRING_VARIABLE_NAMES[:14], *ONLY_NOUNS, "def"], "only 14 docstring variable names"),
        ("docstring", [*ONLY_NAMES, *ONLY_NOUNS[:2], "def"], "only 2 docstring description"),
    ],
)
def test_refuses_in_one_line_when_a_word_is_not_one_token(task: str, texts: list[str], message: str) -> None:
    module, _, _ = CASES[task]
    with pytest.raises(TaskInputError, match=message) as err:
        module.make_examples(word_level_tokenizer(texts), 5, 0)
    assert "\n" not in str(err.value) and repr(task) in str(err.value)


@pytest.mark.parametrize("task", CASES)
def test_refuses_a_model_without_tokenizer(task: str, models: dict[str, HookedTransformer]) -> None:
    module, _, model_name = CASES[task]
    model = models[model_name]
    model.tokenizer = None
    with pytest.raises(TaskInputError, match="has none") as err:
        module.TASK.build(model, 4, 0)
    assert "\n" not in str(err.value)


def hand_metric(task: str, logits: torch.Tensor, data, tok) -> torch.Tensor:
    """The paper's metric written out example by example from the prompts' words."""
    values = []
    for i, row in enumerate(data):
        final = logits[i, row["position"]]
        if task == "ioi":
            io, s = (token_id(tok, name) for name in (row["io"], row["s"]))
            values.append(final[io] - final[s])
        elif task == "docstring":
            wrong = max(final[token_id(tok, w)] for w in row["distractors"])
            values.append(final[token_id(tok, row["answer"])] - wrong)
        else:
            probs = torch.softmax(final, dim=-1)
            year = [probs[token_id(tok, f"{yy:02d}")] for yy in range(100)]
            values.append(sum(year[row["yy"] + 1 :]) - sum(year[: row["yy"] + 1]))
    return torch.stack(values)


@pytest.mark.parametrize("task", CASES)
@torch.no_grad()
def test_build_metric_and_masked_forward_on_the_random_hub_architecture(
    task: str, models: dict[str, HookedTransformer]
) -> None:
    module, _, model_name = CASES[task]
    model = models[model_name]
    model.tokenizer = tok = tokenizer_of(task)
    assert model_name in module.TASK.models and module.TASK.name == task
    data = module.TASK.build(model, 3, 0)
    assert data.clean.shape == data.corrupted.shape and data.n_examples == 3
    logits = model(data.clean)
    metric = data.metric(logits)
    assert metric.shape == (3,)
    torch.testing.assert_close(metric, hand_metric(task, logits, data.dataset, tok), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(metric, data.metric(model(data.corrupted)))
    run = prepare_run(MaskedRuntime(model), data, "corrupted")
    masked = run.runtime.forward(data.clean, run.runtime.graph.mask(), run.ablated)
    real = torch.ones_like(data.clean, dtype=torch.bool) if data.attention_mask is None else data.attention_mask.bool()
    torch.testing.assert_close(masked[real], logits[real], atol=1e-4, rtol=1e-4)  # padding is never read
