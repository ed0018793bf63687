"""MIB's circuit-track tasks (IOI, MCQA, arithmetic, ARC) from a local copy of MIB's datasets,
paired into clean/counterfactual prompts exactly as MIB pairs them.

MIB reads the hub datasets `mib-bench/ioi`, `copycolors_mcqa` (config `4_answer_choices`),
`arithmetic_addition`, `arithmetic_subtraction`, `arc_easy` and `arc_challenge`, which cannot be
downloaded here. This module reads them from `$CDBENCH_MIB_DATA` (default
`~/.cache/cdbench/mib`): `<dataset>/` as written by `datasets`' `save_to_disk`, or
`<dataset>/<split>.json` / `.jsonl` holding rows in MIB's schema. The split is
`$CDBENCH_MIB_SPLIT` (default `validation`, as MIB's `run_evaluation.py`).

Pairing and filters follow `hannamw/MIB-circuit-track` `MIB_circuit_track/dataset.py`
(`HFEAPDataset.filter_dataset` and `__getitem__`):
- IOI: `prompt` vs `s2_io_flip_counterfactual.prompt`; answer " {indirect_object}", distractor
  " {subject}" (metadata); kept when IO, subject and `random_c` tokenise to equally many tokens.
- MCQA and ARC: `prompt` vs `symbol_counterfactual.prompt`; answer `choices.label[answerKey]`,
  distractor the counterfactual's `choices.label[answerKey]`; kept when both tokenise alike.
- Arithmetic: `prompt` vs `random_counterfactual.prompt`; answer `str(label)`, distractor the
  counterfactual's `str(label)`; kept when the row's `operator` is `+` (addition) or `-`
  (subtraction), the counterfactual exists and both labels are single tokens.
Each answer is its first token; prompts start with BOS and are read at their last token, as
EAP-IG's `tokenize_plus` does; the metric is MIB's logit difference. The first n rows that pass
are used, in the file's order (MIB's `head(n)`), so the seed does not change the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from tasks._text import encode, examples_logit_difference, model_tokenizer, prompt_examples, text_task_data
from tasks.base import Task, TaskData, TaskInputError

DATA_ENV = "CDBENCH_MIB_DATA"
SPLIT_ENV = "CDBENCH_MIB_SPLIT"
CITATION = "Mueller et al. 2025, MIB: A Mechanistic Interpretability Benchmark (circuit track)"


@dataclass(frozen=True)
class MibSource:
    """Where one MIB task's rows come from and how they pair.

    Attributes:
        dataset: the hub dataset under `mib-bench/`.
        config: its configuration, if any (MCQA: `4_answer_choices`).
        family: "ioi", "choice" (MCQA, ARC) or "arithmetic".
        counterfactual: the column holding the counterfactual row.
        operator: arithmetic only: the `operator` rows must have.
        models: MIB's scored models for this task (hub names).
    """

    dataset: str
    config: str | None
    family: str
    counterfactual: str
    operator: str | None
    models: tuple[str, ...]


SOURCES: dict[str, MibSource] = {
    "mib-ioi": MibSource(
        "ioi",
        None,
        "ioi",
        "s2_io_flip_counterfactual",
        None,
        ("gpt2", "Qwen/Qwen2.5-0.5B", "google/gemma-2-2b", "meta-llama/Llama-3.1-8B"),
    ),
    "mib-mcqa": MibSource(
        "copycolors_mcqa",
        "4_answer_choices",
        "choice",
        "symbol_counterfactual",
        None,
        ("Qwen/Qwen2.5-0.5B", "google/gemma-2-2b", "meta-llama/Llama-3.1-8B"),
    ),
    "mib-arithmetic-addition": MibSource(
        "arithmetic_addition", None, "arithmetic", "random_counterfactual", "+", ("meta-llama/Llama-3.1-8B",)
    ),
    "mib-arithmetic-subtraction": MibSource(
        "arithmetic_subtraction", None, "arithmetic", "random_counterfactual", "-", ("meta-llama/Llama-3.1-8B",)
    ),
    "mib-arc-easy": MibSource(
        "arc_easy", None, "choice", "symbol_counterfactual", None, ("google/gemma-2-2b", "meta-llama/Llama-3.1-8B")
    ),
    "mib-arc-challenge": MibSource(
        "arc_challenge", None, "choice", "symbol_counterfactual", None, ("meta-llama/Llama-3.1-8B",)
    ),
}


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV, Path.home() / ".cache" / "cdbench" / "mib")).expanduser()


def data_folder(source: MibSource, root: Path | None = None) -> Path:
    folder = (root or data_root()) / source.dataset
    return folder / source.config if source.config else folder


def missing_data_message(name: str, source: MibSource, folder: Path, split: str) -> str:
    """The one line saying what to download and where to put it."""
    config = f", {source.config!r}" if source.config else ""
    return (
        f"task {name!r}: MIB's data is not at {folder}; on a connected machine run "
        f"`datasets.load_dataset('mib-bench/{source.dataset}'{config}).save_to_disk('{folder}')` and copy the folder "
        f"here, or put {split}.json (rows in MIB's schema) there (${DATA_ENV} moves the root)"
    )


def has_local_data(name: str, root: Path | None = None) -> bool:
    """Whether MIB's data for task `name` is on this machine (so `run --all` includes the task)."""
    folder = data_folder(SOURCES[name], root)
    split = os.environ.get(SPLIT_ENV, "validation")
    candidates = (f"{split}.json", f"{split}.jsonl", "dataset_dict.json", "dataset_info.json")
    return any((folder / candidate).is_file() for candidate in candidates)


def load_rows(name: str, source: MibSource, split: str, root: Path | None = None) -> Dataset:
    """The split's rows from a saved `datasets` folder or a JSON/JSONL file.

    Raises:
        TaskInputError: no data there (the message says what to download), or no such split.
    """
    folder = data_folder(source, root)
    for suffix in (".json", ".jsonl"):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            text = path.read_text()
            rows = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines() if line]
            return Dataset.from_list(rows)
    if (folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file():
        saved = load_from_disk(str(folder))
        if isinstance(saved, DatasetDict):
            if split not in saved:
                raise TaskInputError(
                    f"task {name!r}: {folder} has no split {split!r}; valid choices: {', '.join(saved)} (${SPLIT_ENV})"
                )
            return saved[split]
        return saved
    raise TaskInputError(missing_data_message(name, source, folder, split))


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return encode(tokenizer, text)


def pair_row(source: MibSource, row: dict, tokenizer: PreTrainedTokenizerBase) -> tuple[str, str, int, int] | None:
    """(clean prompt, counterfactual prompt, answer id, distractor id) as MIB pairs the row, or
    None where MIB's filter drops it."""
    if source.family == "ioi":
        meta = row["metadata"]
        io, s, c = (_ids(tokenizer, f" {meta[key]}") for key in ("indirect_object", "subject", "random_c"))
        if not (len(io) == len(s) == len(c)) or not io:
            return None
        return row["prompt"], row[source.counterfactual]["prompt"], io[0], s[0]
    counterfactual = row.get(source.counterfactual)
    if source.family == "choice":
        answer = _ids(tokenizer, row["choices"]["label"][row["answerKey"]])
        other = _ids(tokenizer, str(counterfactual["choices"]["label"][counterfactual["answerKey"]]))
        if len(answer) != len(other) or not answer:
            return None
        return row["prompt"], counterfactual["prompt"], answer[0], other[0]
    if row.get("operator") != source.operator or counterfactual is None or counterfactual.get("prompt") is None:
        return None
    answer, other = _ids(tokenizer, str(row["label"])), _ids(tokenizer, str(counterfactual["label"]))
    if len(answer) != 1 or len(other) != 1:
        return None
    return row["prompt"], counterfactual["prompt"], answer[0], other[0]


def build(name: str, model: HookedTransformer, n_examples: int, seed: int, root: Path | None = None) -> TaskData:
    """The first `n_examples` rows that pass MIB's filter, paired as MIB pairs them (`seed` is
    unused: MIB takes the head of the split)."""
    del seed
    source = SOURCES[name]
    tokenizer = model_tokenizer(model, name)
    split = os.environ.get(SPLIT_ENV, "validation")
    pairs = []
    for row in load_rows(name, source, split, root):
        paired = pair_row(source, row, tokenizer)
        if paired is not None:
            pairs.append(paired)
        if len(pairs) == n_examples:
            break
    if not pairs:
        raise TaskInputError(f"task {name!r}: no row of split {split!r} passes MIB's filter under this tokenizer")
    clean, corrupted, answers, distractors = (list(column) for column in zip(*pairs, strict=True))
    examples = prompt_examples(
        tokenizer, clean, corrupted, name, prepend_bos=True, answer_id=answers, distractor_id=distractors
    )
    return text_task_data(model, examples, examples_logit_difference(examples), "logit diff (MIB)", name)


def registered_tasks() -> list[Task]:
    """The MIB tasks whose models the zoo knows (each with its random-weight twin for offline
    tests); a task none of whose models is in the zoo is left out until one is added."""
    from bench.zoo.architectures import HUB_ARCHITECTURES

    tasks = []
    for name, source in SOURCES.items():
        models = [m for m in source.models if m in HUB_ARCHITECTURES]
        if not models:
            continue
        tasks.append(
            Task(
                name=name,
                model=models[0],
                description=f"MIB {source.dataset.replace('_', ' ')} from a local copy of mib-bench/{source.dataset}",
                citation=CITATION,
                build=partial(build, name),
                default_examples=100,
                other_models=(*models[1:], *(f"random:{m}" for m in models)),
                metric="logit diff answer - counterfactual answer (MIB)",
            )
        )
    return tasks
