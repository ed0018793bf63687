"""gendered-pronoun: "So John is a really great friend, isn't" -> " he" (Mathwin et al. 2023).

Which task this is: the Gendered Pronoun task of Mathwin et al. (MI hackathon 2023, "Identifying
a Preliminary Circuit for Predicting Gendered Pronouns in GPT-2 Small"), also the "GP" task of
Edge Pruning (Bhaskar et al. 2024) and of ACDC's early scripts: a name's gender picks the pronoun.
It is NOT the "Gender-Bias" task of Hanna et al. 2024 (EAP-IG) and Zhang et al. 2025 (EAP-GP),
which reads a pronoun off a stereotyped profession ("The nurse said that" vs "The man said that",
Vig et al. 2020 templates; `hannamw/eap-ig-faithfulness` `data/gender-bias`), nor the later
Hanna et al. "gendered-pronoun" task built from gendered nouns ("The englishman whispered that";
`hannamw/formal-functional-dissociation` `data/gendered-pronoun`). Those would be tasks of their own.

The 5 templates and the 10 male and 10 female names are facts from ACDC's early script
(`ArthurConmy/Automatic-Circuit-Discovery` `acdc/gendered_pronouns/remix_dump.py`, git history,
e.g. commit 38d8215f); later code with the same lists credits them to Mathwin et al.

- clean: a template with a name, BOS first (as EAP-IG tokenizes every task); answer " he" for a
  male name, " she" for a female one.
- corrupted: the same template with a name of the other gender (so the correct pronoun flips; the
  ACDC script's fixed "That person ..." baseline would remove the gender instead of flipping it).
- metric: logit(correct pronoun) - logit(other pronoun) at the last token, as in ACDC's script
  and Edge Pruning's GP evaluation.

Choices: names that are not one token under the tokenizer at hand are dropped (so every pair
aligns); examples cycle through every template x name in a seeded order, and each corrupted name is
drawn from the other gender's list. No edge-level ground-truth circuit is published for this task
in GPT-2's graph (Mathwin et al. report heads, not edges): it is scored by faithfulness only.
"""

from __future__ import annotations

import random

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

NAME = "gendered-pronoun"
TEMPLATES = (
    "So {} is a really great friend, isn't",
    "So {} is such a good cook, isn't",
    "So {} is a very good athlete, isn't",
    "So {} is a really nice person, isn't",
    "So {} is such a funny person, isn't",
)
MALE_NAMES = ("John", "David", "Mark", "Paul", "Ryan", "Gary", "Jack", "Sean", "Carl", "Joe")
FEMALE_NAMES = ("Mary", "Lisa", "Anna", "Sarah", "Amy", "Carol", "Karen", "Susan", "Julie", "Judy")
PRONOUNS = (" he", " she")  # indexed by `female`


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` name pairs of opposite gender in a shared template, drawn with `seed`."""
    pronoun_ids = [single_token_id(tokenizer, pronoun, NAME) for pronoun in PRONOUNS]
    names = (single_token_words(tokenizer, MALE_NAMES), single_token_words(tokenizer, FEMALE_NAMES))
    for what, kept in zip(("male names", "female names"), names, strict=True):
        require_enough(kept, 1, what, NAME, tokenizer)
    cases = [(template, female, name) for template in TEMPLATES for female in (0, 1) for name in names[female]]

    rng = random.Random(seed)
    rounds = -(-n_examples // len(cases))
    drawn = [case for _ in range(rounds) for case in rng.sample(cases, len(cases))][:n_examples]
    others = [rng.choice(names[1 - female]) for _, female, _ in drawn]
    return prompt_examples(
        tokenizer,
        [template.format(name) for template, _, name in drawn],
        [template.format(other) for (template, _, _), other in zip(drawn, others, strict=True)],
        NAME,
        prepend_bos=True,
        name=[name for _, _, name in drawn],
        corrupted_name=others,
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
    description="'So {name} is a really great friend, isn't' -> he/she",
    metric="logit diff correct - wrong pronoun",
    citation=(
        "Mathwin et al. 2023 (MI hackathon, gendered pronouns in GPT-2 small); Bhaskar et al. 2024 (Edge Pruning), "
        "GP task; templates and names: ArthurConmy/Automatic-Circuit-Discovery acdc/gendered_pronouns/remix_dump.py"
    ),
    build=build,
    default_examples=100,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "random:gpt2-medium", "gpt2-xl", "random:gpt2-xl"),
    suite_ablations=("corrupted",),
)
