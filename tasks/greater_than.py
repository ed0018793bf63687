"""greater-than: GPT-2 small completes a year span with a later year (Hanna et al. 2023).

Clean: "The war lasted from the year 1732 to the year 17" -> a two-digit token yy' > 32. Corrupted:
the start year becomes YY01 ("... from the year 1701 to the year 17"), which leaves no earlier year to
exceed. Metric (Hanna et al.'s probability difference, hannamw/gpt2-greater-than `utils.py` with the
mask `arange(100) > YY` of `dataset.py`): sum_{y > yy} P(y) - sum_{y <= yy} P(y) over the tokens
"00".."99" at the last position, so the start year itself counts as "not later". ACDC's variant,
-(P(y > yy) - 2 P(y <= yy)), weights the second term twice; we use the paper's plain difference.
Years, as in ACDC's `acdc/greaterthan/utils.py` (itself following Hanna et al.'s `get_valid_years`):
centuries 11-17, years c02..c98 kept when " YYYY" tokenises as [" YY", "yy"], then the first and last
kept year of each century dropped. Nouns: `tasks/_word_lists.py::GREATER_THAN_NOUNS`.
"""

from __future__ import annotations

import random

import torch
from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    TaskInputError,
    encode,
    is_single_token,
    model_tokenizer,
    prompt_examples,
    require_enough,
    single_token_id,
    text_task_data,
    weighted_probability,
)
from tasks._word_lists import GREATER_THAN_NOUNS
from tasks.base import ModelNeeds, Task, TaskData

NAME = "greater-than"
CENTURIES = range(11, 18)
CORRUPTED_YY = 1


def splits_like_gpt2(tokenizer: PreTrainedTokenizerBase, year: int) -> bool:
    """Whether " YYYY" tokenises as the two single tokens " YY" and "yy"."""
    century, yy = f" {year // 100}", f"{year % 100:02d}"
    if not (is_single_token(tokenizer, century) and is_single_token(tokenizer, yy)):
        return False
    return encode(tokenizer, f" {year}") == encode(tokenizer, century) + encode(tokenizer, yy)


def valid_years(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The start years the task samples from (see the module docstring for the rule)."""
    years = []
    for century in CENTURIES:
        kept = [year for year in range(century * 100 + 2, century * 100 + 99) if splits_like_gpt2(tokenizer, year)]
        years.extend(kept[1:-1])
    return years


def year_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids of "00".."99", refusing a tokenizer where one of them is not a single token."""
    return [single_token_id(tokenizer, f"{yy:02d}", NAME) for yy in range(100)]


def prompt(noun: str, century: int, yy: int) -> str:
    return f"The {noun} lasted from the year {century}{yy:02d} to the year {century}"


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` prompt pairs, noun and start year drawn uniformly with `random.Random(seed)`.

    Raises:
        TaskInputError: no valid year, or a two-digit year that is not one token, under `tokenizer`.
    """
    years = valid_years(tokenizer)
    require_enough(years, 1, "years (tokenised as ' YY' + 'yy')", NAME, tokenizer)
    year_token_ids(tokenizer)
    rng = random.Random(seed)
    clean, corrupted, nouns, starts, yy_positions = [], [], [], [], []
    for _ in range(n_examples):
        noun, year = rng.choice(GREATER_THAN_NOUNS), rng.choice(years)
        century, yy = divmod(year, 100)
        clean.append(prompt(noun, century, yy))
        corrupted.append(prompt(noun, century, CORRUPTED_YY))
        position = len(encode(tokenizer, f"The {noun} lasted from the year {century}"))
        if encode(tokenizer, clean[-1])[position] != single_token_id(tokenizer, f"{yy:02d}", NAME):
            raise TaskInputError(f"task {NAME!r}: the year {year} is not tokenised in place in {clean[-1]!r}")
        nouns.append(noun)
        starts.append(year)
        yy_positions.append(position)
    return prompt_examples(
        tokenizer,
        clean,
        corrupted,
        NAME,
        prepend_bos=False,
        noun=nouns,
        year=starts,
        yy=[year % 100 for year in starts],
        yy_position=yy_positions,
    )


def later_minus_earlier_weights(yy: torch.Tensor) -> torch.Tensor:
    """`[n, 100]`: +1 for the two-digit years after each example's yy, -1 for yy and before."""
    later = torch.arange(100)[None, :] > yy[:, None]
    return later.float() * 2 - 1


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    tokenizer = model_tokenizer(model, NAME)
    examples = make_examples(tokenizer, n_examples, seed)
    metric = weighted_probability(
        torch.tensor(examples["position"]),
        torch.tensor(year_token_ids(tokenizer)),
        later_minus_earlier_weights(torch.tensor(examples["yy"])),
    )
    return text_task_data(model, examples, metric, "P(year > yy) - P(year <= yy) at the last token", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="complete 'from the year 1732 to the year 17' with a later year (01-year corruption)",
    metric="P(later) - P(same or earlier)",
    citation=(
        "Hanna, Liu & Variengien 2023, 'How does GPT-2 compute greater-than?' (arXiv 2305.00586), Sec. 2 "
        "(task, probability difference; code hannamw/gpt2-greater-than); nouns and years as in ACDC's "
        "acdc/greaterthan/utils.py (ArthurConmy/Automatic-Circuit-Discovery@bc99ace)"
    ),
    build=build,
    default_examples=100,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"),
    suite_ablations=("corrupted",),
)
