"""What the registry holds for each method: the adapter plus what `bench list` shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    """

    name: str
    func: MethodFn
    description: str
    citation: str
    stochastic: bool = False


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(
    name: str, *, description: str, citation: str, stochastic: bool = False
) -> Callable[[MethodFn], MethodFn]:
    """Decorator registering an adapter function under `name`."""

    def decorate(func: MethodFn) -> MethodFn:
        METHODS.add(name, MethodSpec(name, func, description, citation, stochastic))
        return func

    return decorate
