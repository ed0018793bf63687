"""Which results this installation could run again: a report renders every result file from
what the file holds, but re-running one needs its method, task and model here.

A result of a plugin that is not installed, of a task file or a local checkpoint (known only
to the process that ran it) still renders; `bench report` names the ones it could not re-check.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.results import RunResult


def missing_parts(result: RunResult) -> list[str]:
    """The result's method, task and model that are not available by name here, in words."""
    from bench.zoo import model_names
    from bench.zoo.local import is_local_name
    from methods import METHODS
    from tasks import TASKS

    key = result.key
    missing = []
    if key.method not in METHODS:
        missing.append(f"method {key.method!r}")
    if key.task not in TASKS:
        missing.append(f"task {key.task!r}")
    if key.model not in model_names() and not is_local_name(key.model):
        directory = result.model_identity.get("directory")
        missing.append(f"model {key.model!r}" + (f" (from {directory})" if directory else ""))
    return missing


def recheck_note(results: Iterable[RunResult]) -> str | None:
    """One line naming what keeps some results from being re-run here, or None when nothing does."""
    results = list(results)
    parts: dict[str, int] = {}
    blocked = 0
    for result in results:
        missing = missing_parts(result)
        blocked += bool(missing)
        for part in missing:
            parts[part] = parts.get(part, 0) + 1
    if not blocked:
        return None
    named = "; ".join(f"{part} ({count} run{'s' * (count != 1)})" for part, count in parts.items())
    return (
        f"note: {blocked} of {len(results)} results are rendered from their files but cannot be re-checked "
        f"here, for want of: {named}"
    )
