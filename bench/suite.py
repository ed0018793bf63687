"""The default suite: which (method, task, model, ablation, seed) runs `run --all` and
`check` mean, with filters and data parameters, every name checked before any work starts."""

from __future__ import annotations

from bench.registry import UnknownNameError
from bench.runner import IncompatibleChoice, RunRequest
from bench.runtime import ABLATION_KINDS
from bench.zoo import hub_architecture, is_model_name, model_names
from bench.zoo.local import LOCAL_PREFIX, is_local_name, local_model_name
from methods import METHODS
from tasks import TASKS
from tasks.base import Task
from tasks.user_tasks import find_task, is_task_file

# A stochastic method runs with several seeds by default, so the leaderboard can show mean +/- std.
STOCHASTIC_SEEDS = [0, 1, 2]


def _checked(kind: str, names: list[str] | None, valid: list[str]) -> list[str] | None:
    for name in names or []:
        if name not in valid:
            raise UnknownNameError(kind, name, valid)
    return names


def _in_suite(task: Task, model: str) -> bool:
    """Whether `run --all --models ...` pairs `task` with `model`: a model the task names, or,
    for a task that says what it needs, a user's own model (and any model, for a task with no
    model of its own); whether it has what the task needs is checked when it loads."""
    if model in task.models:
        return True
    if task.needs is not None and (task.model is None or model.startswith(LOCAL_PREFIX)):
        return True
    if not task.any_hub_model:
        return False
    return hub_architecture(model) is not None


def _mib_data_missing(task: str) -> bool:
    from tasks.mib_tasks import SOURCES, has_local_data

    return task in SOURCES and not has_local_data(task)


def plan_suite(
    methods: list[str] | None = None,
    tasks: list[str] | None = None,
    models: list[str] | None = None,
    seeds: list[int] | None = None,
    ablations: list[str] | None = None,
    n_examples: int | None = None,
    options: dict[str, object] | None = None,
    data_seed: int | None = None,
    task_options: dict[str, object] | None = None,
) -> list[RunRequest]:
    """Every requested run; None means the default (all methods and tasks, each task's own
    model and suite ablations, seed 0, or seeds 0-2 for a stochastic method, each task's
    number of examples, examples drawn with the run seed). Tasks may be task files and models
    checkpoint directories (`task_options` go to the task files); a task with no model of its
    own runs on the `models` given."""
    # `file` scores a file the user names (`--method file:PATH`): never part of the default suite
    methods = _checked("method", methods, METHODS.names()) or [m for m in METHODS.names() if METHODS.get(m).discovers]
    # MIB's tasks join the default suite only where their data has been copied here
    task_names = tasks or [t for t in TASKS.names() if not _mib_data_missing(t)]
    file_options = {name: dict(task_options or {}) if is_task_file(name) else None for name in task_names}
    found = {name: find_task(name, file_options[name]) for name in task_names}
    zoo = model_names()
    models = [m if m in zoo or not is_local_name(m) else local_model_name(m) for m in models] if models else None
    for model in models or []:
        if not is_local_name(model) and not is_model_name(model):
            raise UnknownNameError("model", model, zoo)
    _checked("ablation", ablations, list(ABLATION_KINDS))
    plan = []
    for task_name in task_names:
        task = found[task_name]
        if not models and task.model is None:
            raise IncompatibleChoice(f"task {task.name!r} has no model of its own; name the models with --models")
        task_models = [m for m in models if _in_suite(task, m)] if models else [task.model]
        task_ablations = [a for a in ablations if a in task.ablations] if ablations else list(task.suite_ablations)
        for model in task_models:
            for ablation in task_ablations:
                for method in methods:
                    spec = METHODS.get(method)
                    default_seeds = STOCHASTIC_SEEDS if spec.stochastic else [0]
                    for seed in seeds or default_seeds:
                        # a suite-wide option applies to the methods that have it
                        known = spec.defaults
                        mine = {k: v for k, v in (options or {}).items() if k in known}
                        plan.append(
                            RunRequest(
                                method,
                                task_name,
                                model,
                                ablation,
                                seed,
                                n_examples,
                                mine,
                                data_seed=data_seed,
                                task_options=file_options[task_name],
                            )
                        )
    return plan
