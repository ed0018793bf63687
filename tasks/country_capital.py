"""country-capital: recall a capital's country, " Kabul, the capital of" -> " Afghanistan" (Hanna et al. 2024).

Source: the Country-Capital task of Hanna, Pezzelle & Belinkov 2024 ("Have Faith in
Faithfulness", EAP-IG; its `fact-retrieval-comma` data, which later EAP-IG code calls
"Capital-Country"), reused as "Capital Country" by Zhang et al. 2025 (EAP-GP). Despite the name
the prompt gives the capital and asks for the country; the 190 country-capital pairs are facts
from `hannamw/eap-ig-faithfulness` `data/fact-retrieval-comma/country_capitals.csv`, kept in
`tasks/data/country_capital.json` with that citation.

- clean: " {capital}, the capital of" (BOS first, as EAP-IG tokenizes every task) -> " {country}".
- corrupted: the same prompt with another capital of the same token count (EAP-IG's rule, which
  keeps the pair aligned); the distractor is that capital's country.
- metric: P(country) - P(corrupted capital's country) at the last token (EAP-IG scores this task
  by probability difference).

Choices: EAP-IG scores a multi-token country by its first token; we keep only countries that are
one token under the tokenizer at hand (so " United Kingdom" and " United States" never share an
answer), and only capitals with at least one other capital of the same token count. Examples cycle
through the usable capitals in a seeded order, each once before any repeats. No edge-level
ground-truth circuit is published for this task in GPT-2's graph: it is scored by faithfulness only.
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
    is_single_token,
    model_tokenizer,
    prompt_examples,
    require_enough,
    set_probability_difference,
    single_token_id,
    text_task_data,
)
from tasks.base import ModelNeeds, Task, TaskData

NAME = "country-capital"
DATA = json.loads((Path(__file__).parent / "data" / "country_capital.json").read_text())
TEMPLATE = " {}, the capital of"


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` aligned capital pairs, drawn with `seed`."""
    by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for country, capital in DATA["pairs"]:
        if is_single_token(tokenizer, f" {country}"):
            by_length[len(encode(tokenizer, TEMPLATE.format(capital)))].append((country, capital))
    usable = [pair for group in by_length.values() if len(group) > 1 for pair in group]
    require_enough(usable, 2, "countries (with another capital of the same token count)", NAME, tokenizer)

    rng = random.Random(seed)
    rounds = -(-n_examples // len(usable))
    drawn = [pair for _ in range(rounds) for pair in rng.sample(usable, len(usable))][:n_examples]
    rows = []
    for country, capital in drawn:
        group = by_length[len(encode(tokenizer, TEMPLATE.format(capital)))]
        rows.append((country, capital, *rng.choice([pair for pair in group if pair[1] != capital])))
    countries, capitals, other_countries, other_capitals = (list(column) for column in zip(*rows, strict=True))
    return prompt_examples(
        tokenizer,
        [TEMPLATE.format(capital) for capital in capitals],
        [TEMPLATE.format(capital) for capital in other_capitals],
        NAME,
        prepend_bos=True,
        country=countries,
        capital=capitals,
        corrupted_country=other_countries,
        corrupted_capital=other_capitals,
        answer_ids=[[single_token_id(tokenizer, f" {country}", NAME)] for country in countries],
        distractor_ids=[[single_token_id(tokenizer, f" {country}", NAME)] for country in other_countries],
    )


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    examples = make_examples(model_tokenizer(model, NAME), n_examples, seed)
    return text_task_data(model, examples, set_probability_difference(examples), "P(country) - P(corrupted)", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="' {capital}, the capital of' -> its country",
    metric="P(country) - P(corrupted capital's country)",
    citation=(
        "Hanna, Pezzelle & Belinkov 2024 (EAP-IG, COLM), Country-Capital task; Zhang et al. 2025 (EAP-GP, "
        "arXiv 2502.06852), Capital Country dataset; data: hannamw/eap-ig-faithfulness data/fact-retrieval-comma"
    ),
    build=build,
    default_examples=100,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "random:gpt2-medium", "gpt2-xl", "random:gpt2-xl"),
    suite_ablations=("corrupted",),
)
