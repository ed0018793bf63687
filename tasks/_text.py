"""What the natural-language tasks share: tokenising prompt pairs with the model's own tokenizer,
refusing in one line a tokenizer that breaks a task's assumptions, and the papers' metrics.

Every task here compares a clean prompt with a corrupted one position by position and reads
the prediction after each prompt's last token. So two things must hold for the tokenizer at
hand, and a task checks both instead of silently mis-scoring:
- each answer (and distractor) is exactly one token;
- a clean prompt and its corruption have the same number of tokens.
Prompts of different lengths are right-padded with an attention mask; each example is read at
its own last token (`TaskData.output_positions` is then a `[n]` index tensor), and mean
ablation averages real positions only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from datasets import Dataset
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks.base import Metric, TaskData, TaskInputError, select_positions


def model_tokenizer(model: HookedTransformer, task: str) -> PreTrainedTokenizerBase:
    """The model's own tokenizer, or a one-line refusal when it has none."""
    if model.tokenizer is None:
        raise TaskInputError(
            f"task {task!r} needs the model's tokenizer, and model {model.cfg.model_name!r} has none "
            "(random-weight models carry no tokenizer offline); attach one with model.set_tokenizer(...) "
            "or run the task on its hub model"
        )
    return model.tokenizer


def tokenizer_name(tokenizer: PreTrainedTokenizerBase) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of `text` without special tokens (so leading spaces behave as in the prompt)."""
    return list(tokenizer.encode(text, add_special_tokens=False))


def is_single_token(tokenizer: PreTrainedTokenizerBase, text: str) -> bool:
    ids = encode(tokenizer, text)
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


def single_token_id(tokenizer: PreTrainedTokenizerBase, text: str, task: str) -> int:
    """The one token id of `text`, or a one-line refusal naming the text and its tokens."""
    if not is_single_token(tokenizer, text):
        pieces = tokenizer.convert_ids_to_tokens(encode(tokenizer, text))
        raise TaskInputError(
            f"task {task!r}: {text!r} is not a single token under tokenizer {tokenizer_name(tokenizer)!r} "
            f"(it becomes {pieces}); every answer and distractor must be one token"
        )
    return encode(tokenizer, text)[0]


def single_token_words(tokenizer: PreTrainedTokenizerBase, words: Sequence[str], prefix: str = " ") -> list[str]:
    """The words that are one token (after `prefix`) under this tokenizer, in their given order."""
    return [word for word in words if is_single_token(tokenizer, prefix + word)]


def require_enough(words: Sequence[str], needed: int, what: str, task: str, tokenizer: PreTrainedTokenizerBase) -> None:
    if len(words) < needed:
        raise TaskInputError(
            f"task {task!r}: only {len(words)} {what} are single tokens under tokenizer "
            f"{tokenizer_name(tokenizer)!r}; the task needs at least {needed}"
        )


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    clean: Sequence[str],
    corrupted: Sequence[str],
    task: str,
    prepend_bos: bool,
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each clean/corrupted prompt pair, refusing a pair that does not align.

    Raises:
        TaskInputError: a pair tokenises to different lengths (the message shows both), or
            `prepend_bos` is asked of a tokenizer without a BOS token.
    """
    bos: list[int] = []
    if prepend_bos:
        if tokenizer.bos_token_id is None:
            raise TaskInputError(f"task {task!r}: tokenizer {tokenizer_name(tokenizer)!r} has no BOS token")
        bos = [int(tokenizer.bos_token_id)]
    clean_ids, corrupted_ids = [], []
    for clean_text, corrupted_text in zip(clean, corrupted, strict=True):
        a, b = bos + encode(tokenizer, clean_text), bos + encode(tokenizer, corrupted_text)
        if len(a) != len(b):
            raise TaskInputError(
                f"task {task!r}: clean {clean_text!r} ({len(a)} tokens) and corrupted {corrupted_text!r} "
                f"({len(b)} tokens) do not align under tokenizer {tokenizer_name(tokenizer)!r}"
            )
        clean_ids.append(a)
        corrupted_ids.append(b)
    return clean_ids, corrupted_ids


def padded(rows: Sequence[Sequence[int]], fill: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([[*row, *[fill] * (width - len(row))] for row in rows], dtype=torch.long)


def right_padding_mask(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """The attention mask of `padded(rows, ...)`: `[n, width]`, 1 at each row's own tokens."""
    lengths = torch.tensor([len(row) for row in rows])
    return (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()


def check_vocabulary(model: HookedTransformer, examples: Dataset, task: str) -> None:
    """Refuse token ids the model has no embedding (or unembedding) for."""
    largest = max(max(max(row) for row in examples[column]) for column in ("clean_ids", "corrupted_ids"))
    if largest >= model.cfg.d_vocab:
        raise TaskInputError(
            f"task {task!r}: token id {largest} is outside model {model.cfg.model_name!r}'s vocabulary "
            f"(d_vocab {model.cfg.d_vocab}); the tokenizer does not belong to this model"
        )


def prompt_examples(
    tokenizer: PreTrainedTokenizerBase,
    clean: Sequence[str],
    corrupted: Sequence[str],
    task: str,
    prepend_bos: bool,
    **columns: Sequence,
) -> Dataset:
    """A `datasets.Dataset` of aligned prompt pairs: the prompts, their token ids, the position
    whose next-token prediction the metric reads (`position`), plus the task's own `columns`
    (answer and distractor ids, template, ...)."""
    clean_ids, corrupted_ids = encode_pairs(tokenizer, clean, corrupted, task, prepend_bos)
    return Dataset.from_dict(
        {
            "clean_prompt": list(clean),
            "corrupted_prompt": list(corrupted),
            "clean_ids": clean_ids,
            "corrupted_ids": corrupted_ids,
            "position": [len(ids) - 1 for ids in clean_ids],
            **{name: list(values) for name, values in columns.items()},
        }
    )


def text_task_data(
    model: HookedTransformer, examples: Dataset, metric: Metric, metric_name: str, task: str
) -> TaskData:
    """Turn a prompt dataset (see `prompt_examples`) into the runtime's `TaskData`."""
    check_vocabulary(model, examples, task)
    fill = pad_id(model.tokenizer) if model.tokenizer is not None else 0
    return TaskData(
        clean=padded(examples["clean_ids"], fill),
        corrupted=padded(examples["corrupted_ids"], fill),
        metric=metric,
        metric_name=metric_name,
        output_positions=torch.tensor(examples["position"], dtype=torch.long),
        dataset=examples,
        attention_mask=right_padding_mask(examples["clean_ids"]),
    )


def final_logits(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Each example's logits at its own last prompt token: `[..., n, pos, vocab]` -> `[..., n, vocab]`."""
    return select_positions(logits, positions)[..., 0, :]


def logit_difference(positions: torch.Tensor, answers: torch.Tensor, distractors: torch.Tensor) -> Metric:
    """Answer logit minus distractor logit at each example's last token (IOI, pronoun, SVA, ...).

    `distractors` is `[n]`, or `[n, k]` for several per example, in which case the strongest
    distractor counts (as in the docstring task's metric).
    """
    answers = answers.long()
    distractors = distractors.long()

    def metric(logits: torch.Tensor) -> torch.Tensor:
        final = final_logits(logits, positions)
        good = final.gather(-1, answers.expand(*final.shape[:-2], -1)[..., None])[..., 0]
        if distractors.dim() == 1:
            bad = final.gather(-1, distractors.expand(*final.shape[:-2], -1)[..., None])[..., 0]
        else:
            bad = final.gather(-1, distractors.expand(*final.shape[:-2], *distractors.shape)).amax(-1)
        return good - bad

    return metric


def examples_logit_difference(
    examples: Dataset, answers: str = "answer_id", distractors: str = "distractor_id"
) -> Metric:
    """`logit_difference` read from a prompt dataset's `position` and answer/distractor columns."""
    return logit_difference(
        torch.tensor(examples["position"]), torch.tensor(examples[answers]), torch.tensor(examples[distractors])
    )


def weighted_probability(positions: torch.Tensor, token_ids: torch.Tensor, weights: torch.Tensor) -> Metric:
    """`sum_k weights[i, k] * P(token_ids[k])` at each example's last token: probability
    differences such as greater-than's P(later year) - P(earlier or same year)."""
    token_ids = token_ids.long()

    def metric(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(final_logits(logits, positions), dim=-1)[..., token_ids]
        return (probs * weights.to(probs.dtype)).sum(-1)

    return metric


def signed_weights(
    positive: Sequence[Sequence[int]], negative: Sequence[Sequence[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids `[k]` and weights `[n, k]` (+1 per positive id, -1 per negative id of each
    example) for `weighted_probability`: P(positive set) - P(negative set) per example. A token
    in both sets of an example cancels, as it does in a difference of two sums."""
    token_ids = sorted({token for row in (*positive, *negative) for token in row})
    column = {token: j for j, token in enumerate(token_ids)}
    weights = torch.zeros(len(positive), len(token_ids))
    for i, (good, bad) in enumerate(zip(positive, negative, strict=True)):
        for token in good:
            weights[i, column[token]] += 1.0
        for token in bad:
            weights[i, column[token]] -= 1.0
    return torch.tensor(token_ids, dtype=torch.long), weights


def set_probability_difference(examples: Dataset) -> Metric:
    """P(answer set) - P(distractor set) at each example's last token."""
    token_ids, weights = signed_weights(examples["answer_ids"], examples["distractor_ids"])
    return weighted_probability(torch.tensor(examples["position"]), token_ids, weights)
