"""docstring: predict the next argument name in a reST docstring (Heimersheim & Janiak 2023), on attn-only-4l.

Clean prompt (ACDC's `docstring_induction_prompt_generator("rest", n_matching_args=3, n_def_prefix_args=2,
n_def_suffix_args=1, n_doc_prefix_args=0, met_desc_len=3, arg_desc_len=2)`):

    def load(self, size, label, files, state, root, mode):
        \"\"\"price boy tax

        :param files: sea cap
        :param state: age fee
        :param

The answer is " root", the third matching argument. Corrupted ("random_random"): the three matching
def arguments and the two documented ones are replaced by unrelated names, so the docstring no longer
points into the signature. Metric (ACDC's `docstring_metric`, sign flipped so higher = better): the
answer's logit minus the largest logit among the 13 other sampled argument names, including the ones
that only the corruption uses. Word lists: `tasks/_word_lists.py` (ACDC's `acdc/docstring/prompts.py`),
filtered to single tokens (after a space) under the tokenizer at hand. The BOS token is prepended.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

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
from tasks._word_lists import DOCSTRING_NOUNS, DOCSTRING_VARIABLE_NAMES
from tasks.base import ModelNeeds, Task, TaskData

NAME = "docstring"
N_MATCHING_ARGS = 3
N_DEF_PREFIX_ARGS = 2
N_DEF_SUFFIX_ARGS = 1
MET_DESC_LEN = 3
ARG_DESC_LEN = 2
N_NAMES = 1 + 1 + N_MATCHING_ARGS + 2 * (N_MATCHING_ARGS - 1) + N_MATCHING_ARGS + N_DEF_PREFIX_ARGS + N_DEF_SUFFIX_ARGS
"""Names drawn per prompt: the method, a spare answer, 3 + 2 corrupted args, 2 unmatched, 3 matching,
2 prefix and 1 suffix args (as ACDC's generator draws them; the spare answer is only a distractor here)."""


def rest_prompt(
    method: str,
    description: Sequence[str],
    def_args: Sequence[str],
    doc_args: Sequence[str],
    arg_descriptions: Sequence[Sequence[str]],
) -> str:
    """A method signature and a reST docstring that documents `doc_args` and ends at the next `:param`."""
    params = "".join(
        f"    :param {arg}: {' '.join(words)}\n" for arg, words in zip(doc_args, arg_descriptions, strict=True)
    )
    return f'\ndef {method}(self, {", ".join(def_args)}):\n    """{" ".join(description)}\n\n{params}    :param'


def make_examples(tokenizer: PreTrainedTokenizerBase, n_examples: int, seed: int) -> Dataset:
    """`n_examples` prompt pairs drawn with `random.Random(seed)`.

    Raises:
        TaskInputError: fewer than 15 variable names or 3 description nouns are single tokens.
    """
    names = single_token_words(tokenizer, DOCSTRING_VARIABLE_NAMES)
    nouns = single_token_words(tokenizer, DOCSTRING_NOUNS)
    require_enough(names, N_NAMES, "docstring variable names", NAME, tokenizer)
    require_enough(nouns, MET_DESC_LEN, "docstring description nouns", NAME, tokenizer)
    rng = random.Random(seed)
    clean, corrupted, answers, answer_ids, distractors, distractor_ids = [], [], [], [], [], []
    n_doc = N_MATCHING_ARGS - 1
    for _ in range(n_examples):
        method, *args = rng.sample(names, N_NAMES)
        rest = args[1:]
        random_def, rest = rest[:N_MATCHING_ARGS], rest[N_MATCHING_ARGS:]
        random_doc, rest = rest[:n_doc], rest[n_doc:]
        rest = rest[n_doc:]  # the unmatched doc args of ACDC's other corruptions: distractors only
        matching, rest = rest[:N_MATCHING_ARGS], rest[N_MATCHING_ARGS:]
        prefix, suffix = rest[:N_DEF_PREFIX_ARGS], rest[N_DEF_PREFIX_ARGS:]
        description = rng.sample(nouns, MET_DESC_LEN)
        arg_descriptions = [rng.sample(nouns, ARG_DESC_LEN) for _ in range(n_doc)]
        answer = matching[-1]
        clean_def, corrupted_def = [*prefix, *matching, *suffix], [*prefix, *random_def, *suffix]
        clean.append(rest_prompt(method, description, clean_def, matching[:-1], arg_descriptions))
        corrupted.append(rest_prompt(method, description, corrupted_def, random_doc, arg_descriptions))
        answers.append(answer)
        answer_ids.append(single_token_id(tokenizer, " " + answer, NAME))
        distractors.append([arg for arg in args if arg != answer])
        distractor_ids.append([single_token_id(tokenizer, " " + arg, NAME) for arg in distractors[-1]])
    return prompt_examples(
        tokenizer,
        clean,
        corrupted,
        NAME,
        prepend_bos=True,
        answer=answers,
        answer_id=answer_ids,
        distractors=distractors,
        distractor_ids=distractor_ids,
    )


def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    examples = make_examples(model_tokenizer(model, NAME), n_examples, seed)
    metric = examples_logit_difference(examples, distractors="distractor_ids")
    return text_task_data(model, examples, metric, "answer logit - max other-arg logit at the last token", NAME)


TASK = Task(
    name=NAME,
    model="attn-only-4l",
    description="name the next documented argument of a Python method (random_random corruption)",
    metric="answer logit - max other-arg logit",
    citation=(
        "Heimersheim & Janiak 2023, 'A circuit for Python docstrings in a 4-layer attention-only transformer' "
        "(Alignment Forum); generator and metric as in ACDC (Conmy et al. 2023, Sec. 4 / App.) "
        "acdc/docstring/prompts.py and utils.py (ArthurConmy/Automatic-Circuit-Discovery@bc99ace)"
    ),
    build=build,
    default_examples=50,
    needs=ModelNeeds(tokenizer=True),  # also any model with a tokenizer, e.g. a local checkpoint
    other_models=("random:attn-only-4l",),
    suite_ablations=("corrupted",),
)
