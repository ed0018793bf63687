"""A task from a researcher's own JSONL file of prompt pairs: `--task PATH.jsonl`.

One example per line, a JSON object with string fields `clean`, `corrupted`, `answer` and
`distractor`; instead of (or besides) `answer` / `distractor`, lists `answers` / `distractors`
name several tokens that count. The file runs on any model with a tokenizer, under the same
refusals as the built-in text tasks (`tasks/_text.py`): every answer and distractor must be one
token, and a clean prompt and its corruption must have the same number of tokens. Prompts get
the tokenizer's BOS token first when it has one, as every built-in text task does.

Metrics, at each prompt's last token (`--task-option metric=...`):
- `logit-diff` (default): mean answer logit minus mean distractor logit. With one answer and one
  distractor this is the usual logit difference; means (not sums) keep it unchanged by a
  constant shift of the logits when the sets differ in size.
- `prob-diff`: P(answers) - P(distractors), each summed over its set (greater-than's form).

The task's name is the file's stem and the first 10 hex digits of its sha256
(`prompts.jsonl@1a2b3c4d5e`, with `-prob-diff` appended for that metric), so results of
different files, or of one file before and after an edit, never share a key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import (
    model_tokenizer,
    prompt_examples,
    signed_weights,
    single_token_id,
    text_task_data,
    tokenizer_name,
)
from tasks.base import Metric, ModelNeeds, Task, TaskData, TaskInputError, select_positions

JSONL_METRICS: tuple[str, ...] = ("logit-diff", "prob-diff")
DEFAULT_METRIC = "logit-diff"
METRIC_NAMES = {
    "logit-diff": "mean answer logit - mean distractor logit at the last token",
    "prob-diff": "P(answers) - P(distractors) at the last token",
}


@dataclass(frozen=True)
class PromptPair:
    """One line of the file: the prompts and the answer and distractor strings (each one token)."""

    clean: str
    corrupted: str
    answers: tuple[str, ...]
    distractors: tuple[str, ...]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strings(row: dict[str, Any], single: str, several: str, where: str) -> tuple[str, ...]:
    """`row[single]` and the items of `row[several]`, in order, without repeats; at least one."""
    found: list[str] = []
    if single in row:
        if not isinstance(row[single], str):
            raise TaskInputError(f"{where}: field {single!r} must be a string, got {row[single]!r}")
        found.append(row[single])
    if several in row:
        items = row[several]
        if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
            raise TaskInputError(f"{where}: field {several!r} must be a non-empty list of strings, got {items!r}")
        found += items
    if not found:
        raise TaskInputError(f"{where}: needs field {single!r} (a string) or {several!r} (a list of strings)")
    return tuple(dict.fromkeys(found))


KNOWN_FIELDS = ("clean", "corrupted", "answer", "answers", "distractor", "distractors")


def read_prompt_pairs(path: Path) -> list[PromptPair]:
    """Parse and check the file, before any model is loaded.

    Raises:
        TaskInputError: one line naming the file, the line and the field that is wrong.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TaskInputError(f"task file {path}: cannot be read ({err})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskInputError(f"{where}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise TaskInputError(f"{where}: must be a JSON object with fields {', '.join(KNOWN_FIELDS)}")
        unknown = sorted(set(row) - set(KNOWN_FIELDS))
        if unknown:
            raise TaskInputError(f"{where}: unknown field {unknown[0]!r}; valid fields: {', '.join(KNOWN_FIELDS)}")
        for name in ("clean", "corrupted"):
            if not isinstance(row.get(name), str) or not row[name]:
                raise TaskInputError(f"{where}: field {name!r} must be a non-empty string, got {row.get(name)!r}")
        answers = _strings(row, "answer", "answers", where)
        distractors = _strings(row, "distractor", "distractors", where)
        shared = sorted(set(answers) & set(distractors))
        if shared:
            raise TaskInputError(f"{where}: {shared[0]!r} is both an answer and a distractor")
        pairs.append(PromptPair(row["clean"], row["corrupted"], answers, distractors))
    if not pairs:
        raise TaskInputError(f"task file {path}: holds no examples (one JSON object per line)")
    return pairs


def set_metric(positions: torch.Tensor, answers: list[list[int]], distractors: list[list[int]], kind: str) -> Metric:
    """The chosen metric over each example's answer and distractor sets (see the module docstring)."""
    token_ids, signs = signed_weights(answers, distractors)
    if kind == "logit-diff":
        sizes_good = torch.tensor([len(row) for row in answers], dtype=torch.float32)[:, None]
        sizes_bad = torch.tensor([len(row) for row in distractors], dtype=torch.float32)[:, None]
        weights = torch.where(signs > 0, signs / sizes_good, signs / sizes_bad)
    else:
        weights = signs

    def metric(logits: torch.Tensor) -> torch.Tensor:
        final = select_positions(logits, positions)[..., 0, :]
        values = final if kind == "logit-diff" else torch.softmax(final, dim=-1)
        return (values[..., token_ids] * weights.to(values.dtype)).sum(-1)

    return metric


def token_ids(tokenizer: PreTrainedTokenizerBase, texts: tuple[str, ...], task: str) -> list[int]:
    """The one token of each text (refusing one that is not a single token), without repeats."""
    return list(dict.fromkeys(single_token_id(tokenizer, text, task) for text in texts))


def task_name(path: Path, digest: str, metric: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "prompts"
    return f"{stem}.jsonl@{digest[:10]}" + ("" if metric == DEFAULT_METRIC else f"-{metric}")


def jsonl_task(path: Path, metric: str = DEFAULT_METRIC) -> Task:
    """The task of a JSONL file of prompt pairs, checked now (before any model is loaded).

    Raises:
        TaskInputError: an unknown metric, or a line of the file that is wrong (one line each).
    """
    if metric not in JSONL_METRICS:
        raise TaskInputError(f"unknown JSONL task metric {metric!r}; valid choices: {', '.join(JSONL_METRICS)}")
    path = Path(path)
    pairs = read_prompt_pairs(path)
    name = task_name(path, file_sha256(path), metric)

    def build(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
        tokenizer = model_tokenizer(model, name)
        chosen = pairs
        if n_examples < len(pairs):  # a seeded sample, in file order
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[:n_examples]
            chosen = [pairs[i] for i in sorted(order.tolist())]
        answers = [token_ids(tokenizer, pair.answers, name) for pair in chosen]
        distractors = [token_ids(tokenizer, pair.distractors, name) for pair in chosen]
        for pair, good, bad in zip(chosen, answers, distractors, strict=True):
            if set(good) & set(bad):
                raise TaskInputError(
                    f"task {name!r}: prompt {pair.clean!r} has an answer and a distractor that are the same token "
                    f"under tokenizer {tokenizer_name(tokenizer)!r}"
                )
        examples = prompt_examples(
            tokenizer,
            [pair.clean for pair in chosen],
            [pair.corrupted for pair in chosen],
            name,
            prepend_bos=tokenizer.bos_token_id is not None,
            answer_ids=answers,
            distractor_ids=distractors,
        )
        longest = max(len(ids) for ids in examples["clean_ids"])
        if longest > model.cfg.n_ctx:
            raise TaskInputError(
                f"task {name!r}: a prompt is {longest} tokens long and model {model.cfg.model_name!r} "
                f"takes at most {model.cfg.n_ctx}"
            )
        positions = torch.tensor(examples["position"], dtype=torch.long)
        return text_task_data(
            model, examples, set_metric(positions, answers, distractors, metric), METRIC_NAMES[metric], name
        )

    return Task(
        name=name,
        model=None,
        description=f"prompt pairs from {path} ({len(pairs)} examples)",
        citation=f"user file {path.resolve()} (sha256 {file_sha256(path)})",
        build=build,
        default_examples=len(pairs),
        metric=METRIC_NAMES[metric],
        needs=ModelNeeds(tokenizer=True),
    )
