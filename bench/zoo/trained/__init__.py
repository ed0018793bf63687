"""Models trained here whose circuits are known: SIIT models of Tracr programs (`siit-*`) and
a 2-layer induction model (`induction-2l`).

Loading uses the weights shipped with CDBench (`published.py`), checked against their sha256,
so every machine scores the same models. Training stays available (`retrain`, or
`python -m bench models build --retrain`): it writes to the cache (`cache.py`), and only an
explicit `publish` replaces the shipped weights and their ground truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.registry import UnknownNameError
from bench.zoo.trained import cache, published
from bench.zoo.trained.published import TrainedWeightsError
from bench.zoo.trained.recipes import RECIPES, recipe_dict

if TYPE_CHECKING:  # imported by `load_trained`, so `trained_status` costs no torch
    from transformer_lens import HookedTransformer

TRAINED_MODELS: tuple[str, ...] = tuple(RECIPES)

__all__ = [
    "TRAINED_MODELS",
    "TrainedWeightsError",
    "is_retrained",
    "load_trained",
    "publish_retrained",
    "retrain",
    "shipped_card",
    "trained_status",
]


def _check(name: str) -> None:
    if name not in RECIPES:
        raise UnknownNameError("trained model", name, list(TRAINED_MODELS))


def shipped_card(name: str) -> dict[str, Any]:
    """The shipped model card, after checking the weight file against it."""
    _check(name)
    published.verified_weights(name)
    return published.read_card(name)


def is_retrained(name: str) -> bool:
    """Whether the cache holds weights trained here for the current recipe."""
    _check(name)
    return cache.is_built(name, recipe_dict(RECIPES[name]))


def trained_status(name: str) -> tuple[bool, str]:
    """Whether the shipped weights verify, and one line for `bench list` / `bench models list`."""
    try:
        card = shipped_card(name)
    except TrainedWeightsError as err:
        return False, str(err)
    passed = all(fig["passed"] for fig in card.get("acceptance", {}).values())
    verdict = "acceptance passed" if passed else "ACCEPTANCE FAILED (see its card.json)"
    return True, f"shipped weights, sha256 {card['weights']['sha256'][:12]}... verified ({verdict})"


def retrain(name: str, force: bool = False) -> dict[str, Any]:
    """Train `name` into the cache (resuming an interrupted run), measure it against its
    acceptance thresholds, derive its ground truth; return the card. Another process
    training the same model is waited for, and its result reused unless `force`."""
    _check(name)
    with cache.build_lock(name):
        if is_retrained(name) and not force:
            return cache.read_card(name) or {}
        from bench.zoo.trained.builder import build_model

        return build_model(name)


def publish_retrained(name: str) -> None:
    """Replace the shipped weights and ground truth of `name` with the cache's retrained ones."""
    _check(name)
    if not is_retrained(name):
        raise TrainedWeightsError(f"{name}: nothing retrained to publish; run `bench models build --retrain {name}`")
    from bench.zoo.trained.builder import publish_model

    publish_model(name)


def load_trained(name: str) -> HookedTransformer:
    """The shipped model, its weights checked against the card's sha256 (never retrained here).

    Raises:
        TrainedWeightsError: the weight file or card is missing or altered (one line saying how to restore it).
    """
    from transformer_lens import HookedTransformer

    _check(name)
    card = published.read_card(name)
    model = HookedTransformer(RECIPES[name].config(card.get("shape")))
    model.load_state_dict(published.load_state(name))
    return model.eval()
