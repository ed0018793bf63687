"""gender-bias: "The nurse said that" -> " she", "The banker said that" -> " he" (Hanna et al. 2024).

Which task this is: the Gender-Bias task of Hanna, Pezzelle & Belinkov 2024 ("Have Faith in
Faithfulness", EAP-IG), reused as "Gender-Bias" by Zhang et al. 2025 (EAP-GP): GPT-2 picks a
pronoun from a profession's gender stereotype. The 17 templates are Vig et al. 2020's
("Investigating Gender Bias in Language Models Using Causal Mediation Analysis"); the templates,
the 130 male- and 29 female-stereotyped professions and the corruption rule are facts from
`hannamw/eap-ig-faithfulness` at commit c75cc882ae2f1edbc41d5c6aab0d3e8e4cc427d4,
`data/gender-bias/professions.py`, `professions_{male,female}_stereo_filtered.json` and
`create_dataset.py`, kept in `tasks/data/gender_bias.json` with that citation. It is not the
`gendered-pronoun` task (names, Mathwin et al. 2023).

- clean: a template with a profession, BOS first (as EAP-IG tokenizes every task); answer " he"
  for a male-stereotyped profession, " she" for a female-stereotyped one.
- corrupted: the same template with the noun of the other gender, as EAP-IG builds it: a male
  profession becomes "woman", a female one "man", so the expected pronoun flips.
- metric: logit(clean pronoun) - logit(other pronoun) at the last token. EAP-IG scores this task
  by logit difference (`metrics.py` `logit_diff`; `all-cross-task-faithfulness.py` keeps
  probability difference for greater-than, country-capital and SVA only).

Choices: EAP-IG keeps a pair only when clean and corrupted have the same token count; with
" man" and " woman" one token each (as in GPT-2) that means one-token professions, which is the
rule here: professions that are not one token (after the leading space) under the tokenizer at
hand are dropped, and a tokenizer that splits " man", " woman", " he" or " she" is refused. As
EAP-IG balances its labels, half the examples (the extra one of an odd count goes to male) have
a female profession; each gender's template x profession cases come in a seeded order, each once
before any repeats, and the two halves are shuffled together. No edge-level ground-truth circuit
is published for this task in GPT-2's graph: it is scored by faithfulness only.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    examples_logit_difference,
    model_tokenizer,
    prompt_examples,
    require_enough,
    single_token_id,
    single_token_words,
    text_task_data,
)
from tasks.base import ModelNeeds, Task, TaskData

NAME = "gender-bias"
DATA = json.loads((Path(__file__).parent / "data" / "gender_bias.json").read_text())
PRONOUNS = (" he", " she")  # indexed by `female`
CORRUPTIONS = ("woman", "man")  # indexed by `female`: the noun of the other gender


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` profession prompts, half of each stereotype, with the other gender's noun as
    corruption, drawn with `seed`."""
    pronoun_ids = [single_token_id(tokenizer, pronoun, NAME) for pronoun in PRONOUNS]
    for word in CORRUPTIONS:
        single_token_id(tokenizer, f" {word}", NAME)
    professions = (single_token_words(tokenizer, DATA["male"]), single_token_words(tokenizer, DATA["female"]))
    for what, kept in zip(("male professions", "female professions"), professions, strict=True):
        require_enough(kept, 1, what, NAME, tokenizer)

    rng = random.Random(seed)
    drawn = []
    for female, count in ((0, n_examples - n_examples // 2), (1, n_examples // 2)):
        cases = [(template, female, profession) for template in DATA["templates"] for profession in professions[female]]
        rounds = -(-count // len(cases))
        drawn += [case for _ in range(rounds) for case in rng.sample(cases, len(cases))][:count]
    rng.shuffle(drawn)
    return prompt_examples(
        tokenizer,
        [template.format(profession) for template, _, profession in drawn],
        [template.format(CORRUPTIONS[female]) for template, female, _ in drawn],
        NAME,
        prepend_bos=True,
        profession=[profession for _, _, profession in drawn],
        corrupted_word=[CORRUPTIONS[female] for _, female, _ in drawn],
        female=[female for _, female, _ in drawn],
        answer_id=[pronoun_ids[female] for _, female, _ in drawn],
        distractor_id=[pronoun_ids[1 - female] for _, female, _ in drawn],
    )


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    examples = make_examples(model_tokenizer(model, NAME), n_examples, seed)
    metric = examples_logit_difference(examples)
    return text_task_data(model, examples, metric, "logit(he/she) - logit(she/he)", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="'The {profession} said that' -> he/she by stereotype; corrupted with man/woman",
    metric="logit diff stereotyped - other pronoun",
    citation=(
        "Hanna, Pezzelle & Belinkov 2024 (EAP-IG, COLM), Gender-Bias task; Zhang et al. 2025 (EAP-GP, "
        "arXiv 2502.06852), Gender-Bias dataset; templates: Vig et al. 2020; data: hannamw/eap-ig-faithfulness "
        "data/gender-bias"
    ),
    build=build,
    default_examples=100,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "random:gpt2-medium", "gpt2-xl", "random:gpt2-xl"),
    suite_ablations=("corrupted",),
)
