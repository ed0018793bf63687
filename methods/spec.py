"""What the registry holds for each method: the adapter plus what `bench list` shows."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from bench.discovery import MethodFn
from bench.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A registered method adapter.

    Attributes:
        name: stable name used on the command line and in results.
        func: `DiscoveryRun -> EdgeScores`.
        description: one line saying what it computes.
        citation: the paper it implements.
        stochastic: whether scores depend on the seed (scoring then reports mean +/- std).
        defaults: every option the method reads, with its default; results record these
            merged with what the user set, so a changed default shows in the results.
        check: parses every option and raises ValueError naming a bad value, before any
            work starts (what it returns is not used).
        discovers: False for an entry that only reads scores someone else produced (`file`,
            given as `--method file:PATH`): `run --all` and sweeps over every method skip it.
        additive_over_examples: the scores are a mean over examples of per-example terms, so
            the examples may be scored a chunk at a time (`--examples-per-pass`,
            `bench.chunking`) with the same scores up to float rounding.
        costly_reruns: None when rerunning the method is cheap; else why not, in one line
            (`TRAINS`): `run --all` and `check` measure its stability only when asked
            (`--stability all`), and the leaderboard shows the line instead of a number.
    """

    name: str
    func: MethodFn
    description: str
    citation: str
    stochastic: bool = False
    defaults: dict[str, object] = field(default_factory=dict)
    check: Callable[[dict[str, object]], object] | None = None
    discovers: bool = True
    additive_over_examples: bool = False
    costly_reruns: str | None = None

    def resolve_options(self, options: dict[str, object] | None) -> dict[str, object]:
        """Defaults overlaid with `options`; an unknown key is an error naming the valid ones."""
        unknown = sorted(set(options or {}) - set(self.defaults))
        if unknown:
            valid = ", ".join(self.defaults) or "none"
            raise ValueError(f"method {self.name!r} has no option {unknown[0]!r}; valid choices: {valid}")
        resolved = {**self.defaults, **(options or {})}
        if self.check is not None:
            self.check(resolved)
        return resolved


def _load_methods() -> None:
    """The built-in adapters, then plugins (entry points, `--plugin`, CDBENCH_PLUGINS)."""
    from bench.plugins import load_plugins
    from methods import BUILTIN_MODULES

    for module in BUILTIN_MODULES:
        importlib.import_module(f"methods.{module}")
    load_plugins()


def _builtin_rank(spec: MethodSpec) -> int:
    """Built-ins in `BUILTIN_MODULES` order, whatever imported them first; plugins after."""
    from methods import BUILTIN_MODULES

    module = spec.func.__module__.removeprefix("methods.")
    return BUILTIN_MODULES.index(module) if module in BUILTIN_MODULES else len(BUILTIN_MODULES)


METHODS: Registry[MethodSpec] = Registry("method", loader=_load_methods, rank=_builtin_rank)


def whole_number(value: object) -> int:
    """An integer option as the command line gives it (3 or "3"); ValueError for anything
    else (2.5, "3.0", "x"), so a count is never silently truncated."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        raise ValueError(f"not a whole number: {value!r}")
    return int(text)


TRAINS = (
    "trains its gates: each of the B bootstrap and B seed reruns is a full training run "
    "(30-400 s on a CPU for the offline suite's models); measured with --stability all"
)
"""`costly_reruns` of a method that trains (Edge Pruning, subnetwork probing)."""

Config = TypeVar("Config")


def config_from_options(cls: type[Config], options: dict[str, object], method: str) -> Config:
    """Build the options dataclass `cls` of `method` from `run.options` (values as the command
    line gives them); an unknown key or a value of the wrong type is a one-line error naming it."""
    types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(types))
    if unknown:
        raise ValueError(f"unknown {method} option(s) {unknown}; valid: {', '.join(types)}")
    casts: dict[str, Callable[[object], Any]] = {"int": whole_number, "float": float, "str": str}
    values = {}
    for key, value in options.items():
        try:
            values[key] = casts[str(types[key])](value)
        except (TypeError, ValueError):
            raise ValueError(f"{method} option {key} must be {types[key]}, got {value!r}") from None
    return cls(**values)


def register_method(
    name: str,
    *,
    description: str,
    citation: str,
    stochastic: bool = False,
    defaults: dict[str, object] | None = None,
    check: Callable[[dict[str, object]], object] | None = None,
    discovers: bool = True,
    additive_over_examples: bool = False,
    costly_reruns: str | None = None,
) -> Callable[[MethodFn], MethodFn]:
    """Decorator registering an adapter function under `name`."""

    def decorate(func: MethodFn) -> MethodFn:
        spec = MethodSpec(
            name,
            func,
            description,
            citation,
            stochastic,
            dict(defaults or {}),
            check,
            discovers=discovers,
            additive_over_examples=additive_over_examples,
            costly_reruns=costly_reruns,
        )
        METHODS.add(name, spec)
        return func

    return decorate
