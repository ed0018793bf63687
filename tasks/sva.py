"""sva: subject-verb agreement, "The author that the guards like" -> a singular verb (Hanna et al. 2024).

Source: the SVA task of Hanna, Pezzelle & Belinkov 2024 ("Have Faith in Faithfulness", EAP-IG),
reused as "Subject-Verb Agreement" by Zhang et al. 2025 (EAP-GP). EAP-IG builds it from the
Marvin & Linzen 2018 agreement templates (simple, sentential complement, VP coordination,
prepositional phrase, subject/object relative clauses with and without "that", across and
within). `tasks/data/sva.json` holds those 15 templates and their word lists, read off
`hannamw/eap-ig-faithfulness` `data/sva/sva_raw_data/ML-*_all.csv`, and EAP-IG's verb list
`data/sva/combined_verb_list.csv` (singular/plural present-tense pairs), with that citation.

- clean: a template prefix whose next word is the verb agreeing with `{subject}`, BOS first (as
  EAP-IG tokenizes every task); e.g. "The authors that the guard" (within: the embedded subject).
- corrupted: the same prefix with the subject's number flipped, and with it every word that
  agrees with the subject ("The author that likes the guard" <-> "The authors that like the guard");
  every other word is kept, number included.
- metric: P(verbs of the subject's number) - P(verbs of the other number), each summed over the
  verb list, at the last token: EAP-IG's SVA probability difference, which it uses for this task.

Choices: a template is drawn uniformly, then its words (EAP-IG instead pools every M&L sentence,
so the large prepositional and relative-clause templates dominate); nouns, verbs and phrases whose
two numbers differ in token count are dropped, so pairs align; a verb pair counts for the metric
only when both of its forms are one token (EAP-IG's "strict" reading also keeps a one-token
singular whose plural is not one token), and a token in both sets is dropped. No
edge-level ground-truth circuit is published for this task in GPT-2's graph: it is scored by
faithfulness only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    encode,
    is_single_token,
    model_tokenizer,
    prompt_examples,
    require_enough,
    single_token_id,
    text_task_data,
    weighted_probability,
)
from tasks.base import Metric, ModelNeeds, Task, TaskData

NAME = "sva"
DATA = json.loads((Path(__file__).parent / "data" / "sva.json").read_text())
MIN_ANSWER_VERBS = 10


def answer_verbs(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """Token ids of the singular and of the plural verb forms that the metric sums over."""
    pairs = [
        (singular, plural)
        for singular, plural in DATA["answer_verbs"]
        if is_single_token(tokenizer, f" {singular}") and is_single_token(tokenizer, f" {plural}")
    ]
    require_enough(pairs, MIN_ANSWER_VERBS, "verb pairs (both forms)", NAME, tokenizer)
    singular = {single_token_id(tokenizer, f" {s}", NAME) for s, _ in pairs}
    plural = {single_token_id(tokenizer, f" {p}", NAME) for _, p in pairs}
    return sorted(singular - plural), sorted(plural - singular)


def aligned(tokenizer: PreTrainedTokenizerBase, pairs: Sequence[Sequence[str]], what: str) -> list[Sequence[str]]:
    """The (singular, plural) pairs whose two forms have the same token count."""
    kept = [pair for pair in pairs if len(encode(tokenizer, f" {pair[0]}")) == len(encode(tokenizer, f" {pair[1]}"))]
    require_enough(kept, 1, f"{what} (with singular and plural of equal token count)", NAME, tokenizer)
    return kept


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` aligned singular/plural prefix pairs, drawn with `seed`."""
    answer_verbs(tokenizer)  # refuse early when the metric's verbs are not single tokens
    nouns = {kind: aligned(tokenizer, pairs, f"{kind} nouns") for kind, pairs in DATA["nouns"].items()}
    verbs = {kind: aligned(tokenizer, DATA["verbs"][kind], kind) for kind in ("transitive", "short_vp", "long_vp")}
    rng = random.Random(seed)
    clean, corrupted, plural, groups = [], [], [], []
    for _ in range(n_examples):
        group, template, subject_kind, head_kind = rng.choice(DATA["templates"])
        number, other_number = rng.randrange(2), rng.randrange(2)
        agreeing = {
            "subject": rng.choice(nouns[subject_kind]),
            "subject_verb": rng.choice(verbs["transitive"]),
            "short_vp": rng.choice(verbs["short_vp"]),
            "long_vp": rng.choice(verbs["long_vp"]),
        }
        fixed = {
            "head": rng.choice(nouns[head_kind or "animate"])[other_number],
            "other": rng.choice(nouns["embedded"])[other_number],
            "other_verb": rng.choice(verbs["transitive"])[other_number],
            "reporter": rng.choice(nouns["reporter"])[other_number],
            "reporting": rng.choice(DATA["verbs"]["reporting"]),
            "prep": rng.choice(DATA["prepositions"]["inanimate" if subject_kind == "inanimate" else "animate"]),
        }
        clean.append(template.format(**{slot: pair[number] for slot, pair in agreeing.items()}, **fixed))
        corrupted.append(template.format(**{slot: pair[1 - number] for slot, pair in agreeing.items()}, **fixed))
        plural.append(number)
        groups.append(group)
    return prompt_examples(tokenizer, clean, corrupted, NAME, prepend_bos=True, plural=plural, group=groups)


def agreement_probability(tokenizer: PreTrainedTokenizerBase, examples: Dataset) -> Metric:
    """P(verbs agreeing with the clean subject) - P(verbs of the other number), per example."""
    singular, plural = answer_verbs(tokenizer)
    signs = torch.tensor([1.0 - 2.0 * p for p in examples["plural"]])  # +1 singular subject, -1 plural
    column = torch.cat([torch.ones(len(singular)), -torch.ones(len(plural))])
    token_ids = torch.tensor(singular + plural, dtype=torch.long)
    return weighted_probability(torch.tensor(examples["position"]), token_ids, signs[:, None] * column)


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    tokenizer = model_tokenizer(model, NAME)
    examples = make_examples(tokenizer, n_examples, seed)
    metric = agreement_probability(tokenizer, examples)
    return text_task_data(model, examples, metric, "P(agreeing verbs) - P(other verbs)", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="Marvin & Linzen prefixes -> verb number",
    metric="P(agreeing verbs) - P(non-agreeing verbs)",
    citation=(
        "Hanna, Pezzelle & Belinkov 2024 (EAP-IG, COLM), SVA task; Zhang et al. 2025 (EAP-GP, arXiv 2502.06852), "
        "SVA dataset; templates Marvin & Linzen 2018; data: hannamw/eap-ig-faithfulness data/sva"
    ),
    build=build,
    default_examples=500,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "random:gpt2-medium", "gpt2-xl", "random:gpt2-xl"),
    suite_ablations=("corrupted",),
)
