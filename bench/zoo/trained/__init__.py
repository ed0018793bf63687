"""Models trained here whose circuits are known: SIIT models of Tracr programs (`siit-*`) and
a 2-layer induction model (`induction-2l`).

Weights, model cards and ground truth are cached (`cache.py`); loading a model that is not
built trains it first, with a progress bar, in a few minutes on a CPU.
"""

from __future__ import annotations

from typing import Any

from transformer_lens import HookedTransformer

from bench.registry import UnknownNameError
from bench.zoo.trained import cache
from bench.zoo.trained.recipes import RECIPES, recipe_dict

TRAINED_MODELS: tuple[str, ...] = tuple(RECIPES)

__all__ = ["TRAINED_MODELS", "build", "is_built", "load_trained", "status_line"]


def _check(name: str) -> None:
    if name not in RECIPES:
        raise UnknownNameError("trained model", name, list(TRAINED_MODELS))


def is_built(name: str) -> bool:
    _check(name)
    return cache.is_built(name, recipe_dict(RECIPES[name]))


def status_line(name: str) -> str:
    """One line for `bench list` / `bench models list`."""
    if not is_built(name):
        return f"not built; `python -m bench models build {name}` (or the first load) trains it"
    card = cache.read_card(name) or {}
    passed = all(fig["passed"] for fig in card.get("acceptance", {}).values())
    seconds = card.get("training", {}).get("seconds", 0.0)
    verdict = "acceptance passed" if passed else "ACCEPTANCE FAILED (see card.json)"
    return f"built in {cache.model_dir(name)} ({seconds:.0f} s training; {verdict})"


def build(name: str, force: bool = False) -> dict[str, Any]:
    """Train `name` (unless built and not `force`), measure it, write weights, card and ground
    truth; return the card."""
    _check(name)
    if is_built(name) and not force:
        return cache.read_card(name) or {}
    from bench.zoo.trained.builder import build_model

    return build_model(name)


def load_trained(name: str) -> HookedTransformer:
    """The trained model from the cache, building it first if needed."""
    build(name)
    card = cache.read_card(name) or {}
    model = HookedTransformer(RECIPES[name].config(card.get("shape")))
    model.load_state_dict(cache.load_weights(name))
    return model.eval()
