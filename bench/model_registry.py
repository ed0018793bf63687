"""Models that plugins add to the zoo by name, beside the built-in hub, Tracr and trained ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.registry import Registry

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

ModelLoader = Callable[[int, str], "HookedTransformer"]
"""`(seed, device) -> HookedTransformer`: builds the model (the seed matters only for random
weights); the zoo puts it in eval mode and enables the graph's hooks."""


@dataclass(frozen=True)
class ModelSpec:
    """A model registered by a plugin.

    Attributes:
        name: the name tasks and `--model` use.
        load: builds it (see `ModelLoader`).
        description: one line for `bench list`.
    """

    name: str
    load: ModelLoader
    description: str = ""


def _load_plugins() -> None:
    from bench.plugins import load_plugins

    load_plugins()


MODELS: Registry[ModelSpec] = Registry("model", loader=_load_plugins)


def register_model(name: str, *, description: str = "") -> Callable[[ModelLoader], ModelLoader]:
    """Decorator registering a model loader `(seed, device) -> HookedTransformer` under `name`.

    >>> @register_model("my-tiny", description="a 2-layer toy")  # doctest: +SKIP
    ... def my_tiny(seed: int = 0, device: str = "cpu"): ...
    """

    def decorate(load: ModelLoader) -> ModelLoader:
        MODELS.add(name, ModelSpec(name, load, description or first_line(load.__doc__)))
        return load

    return decorate


def first_line(doc: str | None) -> str:
    """A docstring's first line (the description a plain-function plugin gets)."""
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""
