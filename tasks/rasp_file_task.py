"""A task from a researcher's own RASP program file: `--task PATH.py`.

The file defines `make_program()` (returning the program's output SOp), `VOCAB` (the input
tokens) and `MAX_SEQ_LEN`; optionally `BOS` (tracr's BOS token, default "BOS", not in VOCAB),
`N_EXAMPLES` (the task's default number of examples), `DESCRIPTION`, `CITATION` and `SOURCE`
(`bench.zoo.rasp_files`). It goes through exactly the code of the built-in Tracr tasks, which
are files of this format themselves (`bench.zoo.tracr_programs`): read by the same loader,
compiled with tracr and converted to TransformerLens (`bench.zoo.tracr_models`), made a task
by `tasks.tracr_tasks` (inputs of every length 1..MAX_SEQ_LEN with a same-length corruption
and the negative L2 to the full model's output as metric, `tasks._tracr`), the circuit derived
from the compiled weights (`bench.zoo.tracr_circuits`) and its detectable part measured per
ablation (`bench.detectability`).

Names follow the file's content: the task is `<stem>.py@<10 hex digits of its sha256>`, its
model `rasp:<stem>@<the same digits>`. The derived ground truth is cached as
`$CDBENCH_CACHE/rasp/<task>.json` (default `~/.cache/cdbench`), so it is derived once per
version of the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.zoo.rasp_files import fail, load_rasp_file
from bench.zoo.tracr_models import RaspProgram, TracrModel, build_tracr_model
from tasks.base import Task
from tasks.tracr_tasks import default_examples, program_task

__all__ = ["compile_checked", "default_examples", "derived_ground_truth_dir", "load_rasp_file", "rasp_file_task"]


def compile_checked(path: Path, program: RaspProgram) -> TracrModel:
    """Compile now, so a program tracr cannot compile is one line before any run starts."""
    try:
        return build_tracr_model(program)
    except Exception as err:
        raise fail(
            path, f"tracr cannot compile it: {type(err).__name__}: {next(iter(str(err).splitlines()), '')}"
        ) from None


def rasp_file_task(path: Path) -> Task:
    """The task of a RASP program file: compiled, its model registered by name, its ground
    truth derived (and cached) the first time a run scores against it."""
    from bench.zoo.local import register_factory

    path = Path(path)
    program = load_rasp_file(path)
    tracr = compile_checked(path, program)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    model_name = f"rasp:{program.name}@{digest}"
    register_factory(model_name, lambda: tracr.model)
    task = program_task(
        program,
        name=f"{program.name}.py@{digest}",
        model=model_name,
        build_from=program,
        file_name=path.name,
        ground_truth_dir=lambda: derived_ground_truth_dir(task, tracr),
    )
    return task


def derived_ground_truth_dir(task: Task, tracr: TracrModel) -> Path:
    """The directory holding `<task>.json`, derived from the compiled weights on first use."""
    from bench.ground_truth import ground_truth_path, write_ground_truth
    from bench.zoo.tracr_circuits import ground_truth_payload
    from bench.zoo.trained.cache import cache_root

    root = cache_root().parent / "rasp"  # beside models/ in $CDBENCH_CACHE
    if not ground_truth_path(task.name, root).exists():
        root.mkdir(parents=True, exist_ok=True)
        write_ground_truth(ground_truth_payload(task, tracr), root)
    return root
