"""The default suite: which (method, task, model, ablation, seed) runs `run --all` and
`check` mean, with filters and data parameters, every name checked before any work starts."""

from __future__ import annotations

from bench.registry import UnknownNameError
from bench.runner import RunRequest
from bench.runtime import ABLATION_KINDS
from bench.zoo import model_names
from methods import METHODS
from tasks import TASKS

# A stochastic method runs with several seeds by default, so the leaderboard can show mean +/- std.
STOCHASTIC_SEEDS = [0, 1, 2]


def _checked(kind: str, names: list[str] | None, valid: list[str]) -> list[str] | None:
    for name in names or []:
        if name not in valid:
            raise UnknownNameError(kind, name, valid)
    return names


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
) -> list[RunRequest]:
    """Every requested run; None means the default (all methods and tasks, each task's own
    model and suite ablations, seed 0, or seeds 0-2 for a stochastic method, each task's
    number of examples, examples drawn with the run seed)."""
    # `file` scores a file the user names (`--method file:PATH`): never part of the default suite
    methods = _checked("method", methods, METHODS.names()) or [m for m in METHODS.names() if m != "file"]
    # MIB's tasks join the default suite only where their data has been copied here
    tasks = _checked("task", tasks, TASKS.names()) or [t for t in TASKS.names() if not _mib_data_missing(t)]
    _checked("model", models, model_names())
    _checked("ablation", ablations, list(ABLATION_KINDS))
    plan = []
    for task_name in tasks:
        task = TASKS.get(task_name)
        task_models = [m for m in task.models if m in models] if models else [task.model]
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
                            RunRequest(method, task_name, model, ablation, seed, n_examples, mine, data_seed=data_seed)
                        )
    return plan
