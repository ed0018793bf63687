"""Finding a task by what the user typed: a registered name, or a file of their own.

`--task` takes a built-in (or plugin) task name, a JSONL file of prompt pairs
(`tasks.jsonl_task`) or a Python file holding a RASP program (`tasks.rasp_file_task`). A file
task is given a stable name of its own (file stem plus content hash) and remembered under it
for the rest of the process, so a run's key names the task without naming the path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from bench.registry import UnknownNameError
from tasks.base import Task, TaskInputError

FILE_SUFFIXES = {".jsonl": "a JSONL file of prompt pairs", ".py": "a Python file defining a RASP program"}

_FILE_TASKS: dict[str, Task] = {}
_BY_CONTENT: dict[tuple[str, str, tuple], Task] = {}  # (resolved path, sha256, options)


def is_task_file(text: str) -> bool:
    """Whether `text` names a task file rather than a registered task."""
    return Path(text).suffix in FILE_SUFFIXES


def _registered() -> dict[str, Task]:
    from tasks import TASKS

    return {name: TASKS.get(name) for name in TASKS}


def find_task(text: str, options: Mapping[str, object] | None = None) -> Task:
    """The task `text` names: a registered task, a file task loaded earlier in this process
    (by its name), or a task file, which is read, checked and remembered.

    Args:
        options: settings of a file task (`--task-option KEY=VALUE`), e.g. {"metric": "prob-diff"}.

    Raises:
        UnknownNameError: neither a registered task nor a task file (lists the valid choices).
        TaskInputError: a task file that is missing, malformed, or given an unknown option.
    """
    options = dict(options or {})
    registered = _registered()
    if not is_task_file(text):
        if options:
            raise TaskInputError(f"task options ({', '.join(options)}) apply to task files only, not to {text!r}")
        if text in registered:
            return registered[text]
        if text in _FILE_TASKS:
            return _FILE_TASKS[text]
        choices = [*registered, *(f"PATH{suffix} ({what})" for suffix, what in FILE_SUFFIXES.items())]
        raise UnknownNameError("task", text, choices)
    path = Path(text)
    if not path.is_file():
        raise TaskInputError(f"task file {text!r} does not exist")
    content = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest(), tuple(sorted(options.items())))
    if content not in _BY_CONTENT:  # read, import and compile each version of a file once
        _BY_CONTENT[content] = _load_file(path, options)
    task = _BY_CONTENT[content]
    _FILE_TASKS[task.name] = task
    return task


def _load_file(path: Path, options: dict[str, object]) -> Task:
    if path.suffix == ".jsonl":
        from tasks.jsonl_task import jsonl_task

        allowed = {"metric"}
        _check_options(path, options, allowed)
        return jsonl_task(path, **{key: str(value) for key, value in options.items()})
    from tasks.rasp_file_task import rasp_file_task

    _check_options(path, options, set())
    return rasp_file_task(path)


def _check_options(path: Path, options: dict[str, object], allowed: set[str]) -> None:
    for key in options:
        if key not in allowed:
            raise TaskInputError(
                f"unknown option {key!r} for task file {path}; valid choices: {', '.join(sorted(allowed)) or 'none'}"
            )
