"""hypernymy: name the category of a hyponym, ", gemstones and other" -> " gems" (Hanna et al. 2024).

Source: the Hypernymy task of Hanna, Pezzelle & Belinkov 2024 ("Have Faith in Faithfulness",
EAP-IG; its `hypernymy-comma` data), reused as "Hypernymy" by Zhang et al. 2025 (EAP-GP). The
hyponym -> hypernym pairs and the accepted answer words per hypernym are facts read off
`hannamw/eap-ig-faithfulness` (`data/hypernymy-comma/gpt2.csv`, `valid_answers.json`), kept in
`tasks/data/hypernymy.json` with that citation.

- clean: ", {hyponym} and other" (BOS first, as EAP-IG tokenizes every task); several answers
  count as correct (every accepted word of the hyponym's hypernym, e.g. " gem", " gems").
- corrupted: the same prompt with a hyponym of a different hypernym and the same token count;
  its hypernym's answer words are the distractors.
- metric: P(correct answers) - P(corrupted hyponym's answers), each summed over its set, at the
  last token. EAP-IG's paper scripts score hypernymy with the logit form of the same function,
  which sums raw logits over sets of unequal size and so moves with any constant shift of the
  logits; we use its probability form (`prob=True` there, `prob_diff_hypernymy` in later EAP-IG).

Choices: answer words that are not one token under the tokenizer at hand are dropped (a hypernym
left with none is dropped); examples cycle through the usable hyponyms in a seeded order, so each
appears once before any repeats. No edge-level ground-truth circuit is published for this task in
GPT-2's graph: it is scored by faithfulness only.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    encode,
    model_tokenizer,
    prompt_examples,
    require_enough,
    set_probability_difference,
    single_token_id,
    single_token_words,
    text_task_data,
)
from tasks.base import ModelNeeds, Task, TaskData

NAME = "hypernymy"
DATA = json.loads((Path(__file__).parent / "data" / "hypernymy.json").read_text())
TEMPLATE = ", {} and other"


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` aligned hyponym pairs with different hypernyms, drawn with `seed`."""
    answers = {
        hypernym: [single_token_id(tokenizer, f" {word}", NAME) for word in single_token_words(tokenizer, words)]
        for hypernym, words in DATA["answers"].items()
    }
    answers = {hypernym: ids for hypernym, ids in answers.items() if ids}
    require_enough(list(answers), 2, "hypernyms with an answer word that", NAME, tokenizer)
    by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for hypernym, hyponyms in DATA["hyponyms"].items():
        if hypernym in answers:
            for hyponym in hyponyms:
                by_length[len(encode(tokenizer, TEMPLATE.format(hyponym)))].append((hyponym, hypernym))
    usable = [item for group in by_length.values() for item in group if {h for _, h in group} - {item[1]}]
    require_enough(usable, 2, "hyponyms with a same-length hyponym of another hypernym", NAME, tokenizer)

    rng = random.Random(seed)
    rounds = -(-n_examples // len(usable))
    drawn = [item for _ in range(rounds) for item in rng.sample(usable, len(usable))][:n_examples]
    rows = []
    for hyponym, hypernym in drawn:
        length = len(encode(tokenizer, TEMPLATE.format(hyponym)))
        other, other_hypernym = rng.choice([item for item in by_length[length] if item[1] != hypernym])
        rows.append((hyponym, hypernym, other, other_hypernym))
    hyponyms, hypernyms, others, other_hypernyms = (list(column) for column in zip(*rows, strict=True))
    return prompt_examples(
        tokenizer,
        [TEMPLATE.format(h) for h in hyponyms],
        [TEMPLATE.format(h) for h in others],
        NAME,
        prepend_bos=True,
        hyponym=hyponyms,
        hypernym=hypernyms,
        corrupted_hyponym=others,
        corrupted_hypernym=other_hypernyms,
        answer_ids=[answers[h] for h in hypernyms],
        distractor_ids=[answers[h] for h in other_hypernyms],
    )


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    examples = make_examples(model_tokenizer(model, NAME), n_examples, seed)
    return text_task_data(model, examples, set_probability_difference(examples), "P(hypernym) - P(corrupted)", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="', {hyponym} and other' -> its hypernym",
    metric="P(hypernym words) - P(corrupted hypernym's)",
    citation=(
        "Hanna, Pezzelle & Belinkov 2024 (EAP-IG, COLM), Hypernymy task; Zhang et al. 2025 (EAP-GP, "
        "arXiv 2502.06852), Hypernymy dataset; data: hannamw/eap-ig-faithfulness data/hypernymy-comma"
    ),
    build=build,
    default_examples=200,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "random:gpt2-medium", "gpt2-xl", "random:gpt2-xl"),
    suite_ablations=("corrupted",),
)
