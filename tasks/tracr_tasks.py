"""The Tracr tasks: one per RASP program, built by the same code for a built-in program's file
(`bench.zoo.tracr_programs`, the task `tracr-<stem>`) and for a user's file (`--task PATH.py`,
`tasks.rasp_file_task`).

Every task has inputs of every length 1..MAX_SEQ_LEN with a same-length corruption and the
negative L2 to the full model's output as metric (`tasks._tracr`), under zero and corrupted
ablation in the suite (as in the ACDC and Edge Pruning Tracr experiments, and as elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.zoo.tracr_models import RaspProgram
from bench.zoo.tracr_programs import MODEL_PREFIX, load_program, program_names
from tasks._tracr import build_tracr_data
from tasks.base import Task

WHOLE_DOMAIN_UP_TO = 512
SAMPLE_SIZE = 256
METRIC = "neg. squared L2 to the full model's output"


def default_examples(program: RaspProgram) -> int:
    """N_EXAMPLES when the file sets it; else every input when the domain (all lengths) has at
    most 512, else a sample of 256 with every length in proportion."""
    if program.n_examples is not None:
        return program.n_examples
    domain = sum(len(program.vocab) ** n for n in range(1, program.max_seq_len + 1))
    return domain if domain <= WHOLE_DOMAIN_UP_TO else SAMPLE_SIZE


def program_task(
    program: RaspProgram,
    *,
    name: str,
    model: str,
    build_from: str | RaspProgram,
    file_name: str,
    ground_truth_dir: Callable[[], Path] | None = None,
) -> Task:
    """The task of a RASP program.

    Args:
        build_from: what `build_tracr_data` compiles: a built-in program's name (a task that
            pickles by name) or the program itself.
        file_name: the program file's name, for the description when the file sets none.
        ground_truth_dir: where its ground truth lives (None: the package's `ground_truth/`).
    """
    vocab = list(program.vocab)
    return Task(
        name=name,
        model=model,
        description=program.description or f"RASP program {file_name}: vocab {vocab}, lengths 1-{program.max_seq_len}",
        citation=program.citation or program.source,
        build=partial(build_tracr_data, build_from),
        default_examples=default_examples(program),
        suite_ablations=("zero", "corrupted"),
        metric=METRIC,
        ground_truth_dir=ground_truth_dir,
    )


def builtin_tracr_tasks() -> list[Task]:
    """One task per built-in program file, named like its model (`tracr-<stem>`), in name order."""
    tasks = []
    for stem in program_names():
        model = MODEL_PREFIX + stem
        tasks.append(program_task(load_program(stem), name=model, model=model, build_from=stem, file_name=f"{stem}.py"))
    return tasks
