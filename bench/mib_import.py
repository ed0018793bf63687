"""`bench run --method file:PATH`: which method, options, task and model an MIB file stands
for. The task and model come from `--task`/`--model`, else from the `cdbench_task` and
`cdbench_model` an export records in the cfg, else from MIB's folder name `{task}_{model}`."""

from __future__ import annotations

from pathlib import Path

from bench.mib_files import cfg_hints

# MIB's short model names -> the zoo names CDBench loads them by
MODEL_FROM_MIB = {
    "gpt2": "gpt2",
    "qwen2.5": "Qwen/Qwen2.5-0.5B",
    "gemma2": "google/gemma-2-2b",
    "llama3": "meta-llama/Llama-3.1-8B",
}


def names_from_folder(path: Path) -> tuple[str | None, str | None]:
    """(task, model) from the nearest folder named `{task}_{model}` (the file's own folder for a
    file), MIB's short model names mapped to the zoo's; (None, None) when the name has no `_`."""
    folder = path if path.is_dir() else path.parent
    task, sep, model = folder.name.partition("_")
    if not sep or not task or not model:
        return None, None
    return task, MODEL_FROM_MIB.get(model, model)


def file_request(
    method: str, options: dict[str, object], task: str | None, model: str | None
) -> tuple[str, dict[str, object], str | None, str | None]:
    """(method, options, task, model) for `--method file:PATH` (see the module docstring)."""
    from methods.file_import import FILE_METHOD, file_options

    file_opts = file_options(method)
    path = Path(str(file_opts["path"]))
    hints = cfg_hints(path)
    folder_task, folder_model = names_from_folder(path)
    task = task or hints.get("cdbench_task") or folder_task
    if model is None and task == (hints.get("cdbench_task") or folder_task):
        model = hints.get("cdbench_model") or folder_model
    return FILE_METHOD, {**options, **file_opts}, task, model
