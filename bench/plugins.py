"""Plugins: methods, tasks and models from other packages or files, without editing CDBench.

Three ways in, all loaded once, on the first lookup in any registry (after the built-ins):

- installed packages declare entry points in the groups `cdbench.methods`, `cdbench.tasks` and
  `cdbench.models`; `NAME = module:obj` makes NAME available, where `obj` is a plain function
  (a method `DiscoveryRun -> EdgeScores`, or a model loader `(seed, device) -> HookedTransformer`;
  its docstring's first line is the description), a `Task` (tasks), or anything whose import
  registers NAME through `register_method` / `register_task` / `register_model`;
- `python -m bench --plugin module_or_file.py ...` (repeatable), whose import registers things;
- the environment variable CDBENCH_PLUGINS: the same, separated by commas.

A plugin that fails to import or breaks the contract is reported in one line naming it and the
cause (stderr, and `bench list`); everything else still loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

GROUPS = {"method": "cdbench.methods", "task": "cdbench.tasks", "model": "cdbench.models"}
ENV_VAR = "CDBENCH_PLUGINS"

REQUESTED: list[str] = []
"""Loose plugins named on the command line (`--plugin`); `bench.cli.main` fills it."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be loaded: which one, and why, in one line."""

    plugin: str
    cause: str

    def __str__(self) -> str:
        return f"plugin {self.plugin} skipped: {self.cause}"


ORIGINS: dict[tuple[str, str], str] = {}
"""(kind, name) -> where a plugin-registered method, task or model came from, e.g.
"cdbench-example-plugin 0.1.0" or "file ./my_method.py"."""

PROBLEMS: list[PluginProblem] = []
_state = {"loaded": False}


def requested_plugins() -> list[str]:
    """`--plugin` values, then CDBENCH_PLUGINS entries, without repeats."""
    from_env = [part.strip() for part in os.environ.get(ENV_VAR, "").split(",") if part.strip()]
    return list(dict.fromkeys([*REQUESTED, *from_env]))


def plugins_for_workers() -> str:
    """The requested plugins as a CDBENCH_PLUGINS value for another process (a Ray worker):
    file paths made absolute, so it loads the same files whatever its working directory."""
    return ",".join(str(Path(p).expanduser().resolve()) if _is_path(p) else p for p in requested_plugins())


def plugins_configured() -> bool:
    """Whether any plugin is named (`--plugin`, CDBENCH_PLUGINS) or installed (an entry point in
    one of GROUPS), without importing one: `bench list` lists only the built-ins' catalogue
    when there is none."""
    return bool(requested_plugins()) or any(metadata.entry_points(group=group) for group in GROUPS.values())


def load_plugins() -> None:
    """Load every entry-point and loose plugin once; problems are reported, never raised."""
    if _state["loaded"]:
        return
    _state["loaded"] = True
    for kind, group in GROUPS.items():
        for entry in metadata.entry_points(group=group):
            origin = _distribution(entry)
            _guarded(f"{entry.name} ({origin}, {group})", origin, lambda e=entry, k=kind: _load_entry(k, e))
    for plugin in requested_plugins():
        _guarded(plugin, f"file {plugin}" if _is_path(plugin) else f"module {plugin}", lambda p=plugin: _import(p))


def reset() -> None:
    """Forget what was loaded (for tests that load plugins into fresh registries)."""
    _state["loaded"] = False
    ORIGINS.clear()
    PROBLEMS.clear()


def _registries() -> dict[str, object]:
    from bench.model_registry import MODELS
    from methods.spec import METHODS
    from tasks import TASKS

    return {"method": METHODS, "task": TASKS, "model": MODELS}


def _names() -> dict[str, set[str]]:
    return {kind: set(registry.names()) for kind, registry in _registries().items()}  # type: ignore[attr-defined]


def _guarded(label: str, origin: str, load: object) -> None:
    """Run `load`, record what it registered under `origin`, and turn any failure into one line."""
    before = _names()
    try:
        load()  # type: ignore[operator]
    except Exception as err:  # a broken plugin must not stop the others or the built-ins
        cause = f"{type(err).__name__}: {err}".splitlines()[0]
        problem = PluginProblem(label, cause)
        PROBLEMS.append(problem)
        print(f"warning: {problem}", file=sys.stderr)
        return
    for kind, names in _names().items():
        for name in names - before[kind]:
            ORIGINS[(kind, name)] = origin


def _distribution(entry: metadata.EntryPoint) -> str:
    dist = entry.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def _is_path(plugin: str) -> bool:
    return plugin.endswith(".py") or os.sep in plugin


def _import(plugin: str) -> None:
    """Import a module by name, or a .py file by path (its directory joins sys.path, so it can
    import its neighbours)."""
    if not _is_path(plugin):
        importlib.import_module(plugin)
        return
    path = Path(plugin).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {plugin!r}")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = f"cdbench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {plugin!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _load_entry(kind: str, entry: metadata.EntryPoint) -> None:
    """Import the entry point; if that did not register its name, register the object."""
    obj = entry.load()
    registry = _registries()[kind]
    if entry.name in registry:  # type: ignore[operator]  # the import registered it
        return
    if kind == "method":
        _register_method_function(entry.name, obj)
    elif kind == "task":
        _register_task_object(entry.name, obj)
    else:
        _register_model_function(entry.name, obj)


def _one_argument(obj: object, what: str, n_required: int) -> None:
    if not callable(obj):
        raise TypeError(f"{obj!r} is not callable; expected {what}")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(n_required))
    except TypeError:
        name = getattr(obj, "__name__", obj)
        raise TypeError(f"{name!r} does not take {n_required} argument(s); expected {what}") from None


def _register_method_function(name: str, obj: object) -> None:
    from bench.model_registry import first_line
    from methods.spec import register_method

    _one_argument(obj, "a function DiscoveryRun -> EdgeScores (or a module calling register_method)", 1)
    register_method(name, description=first_line(obj.__doc__), citation="")(obj)  # type: ignore[arg-type]


def _register_task_object(name: str, obj: object) -> None:
    from tasks import Task, register_task

    if not isinstance(obj, Task):
        raise TypeError(f"{obj!r} is not a tasks.base.Task and its import registered no task {name!r}")
    register_task(obj if obj.name == name else replace(obj, name=name))


def _register_model_function(name: str, obj: object) -> None:
    from bench.model_registry import register_model

    _one_argument(obj, "a function (seed, device) -> HookedTransformer (or a module calling register_model)", 2)
    register_model(name)(obj)  # type: ignore[arg-type]
