"""ioi: indirect object identification on GPT-2 small (Wang et al. 2022), corrupted to the ABC distribution.

Clean: "Then, Mary and John went to the store. John gave a drink to" -> " Mary" (the indirect object IO,
not the subject S, who is named twice). Corrupted: the same template and place/object with IO, S1 and S2
replaced by three other names, so nothing in the prompt says which name to repeat ("Then, Anna and Paul
went to the store. Rob gave a drink to"). The paper's 15 BABA templates and their 15 ABBA twins (first two
names swapped) are used, as in Wang et al.'s "mixed" dataset; ACDC used only the first ABBA template.
Templates, names, places and objects: `tasks/_word_lists.py` (from ACDC's `acdc/ioi/ioi_dataset.py`, a copy
of the Easy-Transformer code of Wang et al.).
"""

from __future__ import annotations

import random

from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    TaskInputError,
    encode,
    examples_logit_difference,
    model_tokenizer,
    prompt_examples,
    require_enough,
    single_token_id,
    single_token_words,
    text_task_data,
)
from tasks._word_lists import IOI_BABA_TEMPLATES, IOI_NAMES, IOI_OBJECTS, IOI_PLACES
from tasks.base import ModelNeeds, Task, TaskData

NAME = "ioi"
ANSWER_SLOT = " [A]"


def abba(template: str) -> str:
    """The ABBA twin of a BABA template: the first [B] and the first [A] trade places."""
    return template.replace("[B]", "[X]", 1).replace("[A]", "[B]", 1).replace("[X]", "[A]", 1)


TEMPLATES: tuple[str, ...] = (*IOI_BABA_TEMPLATES, *(abba(t) for t in IOI_BABA_TEMPLATES))
"""Template ids 0-14 are BABA, 15-29 their ABBA twins."""

COLUMNS = (
    "io",
    "s",
    "io_id",
    "s_id",
    "template_id",
    "order",
    "io_position",
    "s1_position",
    "s2_position",
    "end_position",
)
"""Dataset columns besides the prompts: names, their token ids, the template and token positions."""


def fill(template: str, io: str, s1: str, s2: str, place: str, obj: str) -> str:
    """The prompt of `template` up to (not including) the final IO, with S1 and S2 set separately."""
    if not template.endswith(ANSWER_SLOT) or template.count("[A]") != 2 or template.count("[B]") != 2:
        raise ValueError(f"IOI template {template!r} must name [A] twice (last at the end) and [B] twice")
    text = template[: -len(ANSWER_SLOT)].replace("[PLACE]", place).replace("[OBJECT]", obj)
    return text.replace("[A]", io).replace("[B]", s1, 1).replace("[B]", s2)


def name_positions(ids: list[int], io_id: int, s_id: int, prompt: str) -> tuple[int, int, int]:
    """Token indices of IO, S1 and S2, refusing a prompt where the names are not found exactly once/twice."""
    s_positions = [i for i, token in enumerate(ids) if token == s_id]
    if ids.count(io_id) != 1 or len(s_positions) != 2:
        raise TaskInputError(f"task {NAME!r}: cannot locate IO once and S twice in the tokens of {prompt!r}")
    return ids.index(io_id), s_positions[0], s_positions[1]


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` IOI prompt pairs drawn with `random.Random(seed)`; no model needed.

    Each example: a template (uniform over the 30), two distinct clean names IO and S, and three
    further distinct names for the corrupted IO, S1 and S2, all one token (with a leading space).

    Raises:
        TaskInputError: fewer than 5 names are single tokens under `tokenizer`.
    """
    names = single_token_words(tokenizer, IOI_NAMES)
    require_enough(names, 5, "IOI names", NAME, tokenizer)
    rng = random.Random(seed)
    clean, corrupted, rows = [], [], []
    for _ in range(n_examples):
        template_id = rng.randrange(len(TEMPLATES))
        io, s, new_io, new_s1, new_s2 = rng.sample(names, 5)
        place, obj = rng.choice(IOI_PLACES), rng.choice(IOI_OBJECTS)
        prompt = fill(TEMPLATES[template_id], io, s, s, place, obj)
        clean.append(prompt)
        corrupted.append(fill(TEMPLATES[template_id], new_io, new_s1, new_s2, place, obj))
        io_id, s_id = single_token_id(tokenizer, " " + io, NAME), single_token_id(tokenizer, " " + s, NAME)
        ids = encode(tokenizer, prompt)
        io_position, s1_position, s2_position = name_positions(ids, io_id, s_id, prompt)
        rows.append(
            {
                "io": io,
                "s": s,
                "io_id": io_id,
                "s_id": s_id,
                "template_id": template_id,
                "order": "BABA" if template_id < len(IOI_BABA_TEMPLATES) else "ABBA",
                "io_position": io_position,
                "s1_position": s1_position,
                "s2_position": s2_position,
                "end_position": len(ids) - 1,
            }
        )
    columns = {key: [row[key] for row in rows] for key in COLUMNS}
    return prompt_examples(tokenizer, clean, corrupted, NAME, prepend_bos=False, **columns)


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    examples = make_examples(model_tokenizer(model, NAME), n_examples, seed)
    metric = examples_logit_difference(examples, answers="io_id", distractors="s_id")
    return text_task_data(model, examples, metric, "logit diff IO - S at the last token", NAME)


TASK = Task(
    name=NAME,
    model="gpt2",
    description="indirect object identification (BABA+ABBA templates, ABC corruption)",
    metric="logit diff IO - S",
    citation=(
        "Wang et al. 2022, 'Interpretability in the Wild' (arXiv 2211.00593), Sec. 2-3 and App. (templates); "
        "data from ACDC's acdc/ioi/ioi_dataset.py (ArthurConmy/Automatic-Circuit-Discovery@bc99ace)"
    ),
    build=build,
    default_examples=100,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"),
    suite_ablations=("corrupted",),
)
