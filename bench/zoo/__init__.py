"""The model zoo: every model a task can name, how to load it, and whether it is available here.

Names:
    `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `attn-only-4l`, `redwood_attn_2l`:
        real weights from the Hugging Face hub, through TransformerLens.
    `random:<hub name>`: the same architecture with seeded random weights (offline).
    `tracr-reverse`, `tracr-xproportion`: compiled here from RASP programs with tracr.
    `siit-reverse`, `siit-xproportion`, `siit-sort`, `siit-hist`, `induction-2l`: trained here
        with known circuits; their weights ship with CDBench (`bench.zoo.trained.published`).
    Any name a plugin registers with `bench.api.register_model` (`bench.model_registry.MODELS`).
    A checkpoint directory, or `local:<name>@<hash>`: a user's own model (`bench.zoo.local`).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformer_lens import HookedTransformer

from bench.graph import Graph, GraphSpec
from bench.model_registry import MODELS
from bench.registry import UnknownNameError
from bench.runtime import enable_edge_hooks
from bench.zoo.architectures import HUB_ARCHITECTURES
from bench.zoo.hub import ModelUnavailable, availability, load_hub_model, random_hub_model
from bench.zoo.local import is_local_name, load_local
from bench.zoo.trained import TRAINED_MODELS, load_trained, trained_status

RANDOM_PREFIX = "random:"
TRACR_MODELS = {"tracr-reverse": "reverse", "tracr-xproportion": "xproportion"}

__all__ = ["ModelStatus", "ModelUnavailable", "load_model", "model_graph", "model_names", "model_status"]


@dataclass(frozen=True)
class ModelStatus:
    name: str
    kind: str  # "hub", "random", "tracr", "trained", "plugin" or "local"
    available: bool
    reason: str


def model_names(include_random: bool = True) -> list[str]:
    names = [*HUB_ARCHITECTURES, *TRACR_MODELS, *TRAINED_MODELS]
    if include_random:
        names += [RANDOM_PREFIX + name for name in HUB_ARCHITECTURES]
    return names + MODELS.names()


def _is_user_model(name: str) -> bool:
    """A checkpoint directory or a model registered in this process; a zoo name wins over a
    directory of the same name."""
    return name not in model_names() and is_local_name(name)


def _check_name(name: str) -> None:
    if name not in model_names() and not is_local_name(name):
        raise UnknownNameError("model", name, [*model_names(), "PATH (a Hugging Face checkpoint directory)"])


def model_status(name: str) -> ModelStatus:
    """Whether `name` can be loaded here, without loading or downloading it."""
    _check_name(name)
    if _is_user_model(name):
        return ModelStatus(name, "local", True, "a local checkpoint or a model given from Python")
    if name in TRACR_MODELS:
        return ModelStatus(name, "tracr", True, "compiled locally with tracr")
    if name in TRAINED_MODELS:
        return ModelStatus(name, "trained", *trained_status(name))
    if name.startswith(RANDOM_PREFIX):
        return ModelStatus(name, "random", True, "random weights, built locally")
    if name in MODELS:
        return ModelStatus(name, "plugin", True, MODELS.get(name).description)
    ok, reason = availability(HUB_ARCHITECTURES[name])
    return ModelStatus(name, "hub", ok, reason)


def load_model(name: str, seed: int = 0, device: str = "cpu") -> HookedTransformer:
    """Load a zoo model in eval mode with the graph's hooks enabled (a trained model from its
    shipped weights, checked against their sha256).

    Raises:
        UnknownNameError: `name` is not in the zoo (the message lists the valid names).
        ModelUnavailable: a hub model whose weights cannot be reached, or a trained model whose
            shipped weights are missing or altered (one-line message).
    """
    _check_name(name)
    if _is_user_model(name):
        model = load_local(name, device)
    elif name in TRACR_MODELS:
        from bench.zoo.tracr_models import build_tracr_model

        model = build_tracr_model(TRACR_MODELS[name]).model
    elif name in TRAINED_MODELS:
        model = load_trained(name)
    elif name in MODELS:
        model = MODELS.get(name).load(seed, device)
    elif name.startswith(RANDOM_PREFIX):
        model = random_hub_model(HUB_ARCHITECTURES[name.removeprefix(RANDOM_PREFIX)], seed, device)
    else:
        model = load_hub_model(HUB_ARCHITECTURES[name], device)
    model.eval()
    return enable_edge_hooks(model)


def model_graph(name: str) -> Graph:
    """The edge graph of a zoo model. For hub models it comes from the architecture table, so
    ground truth can be checked (and `bench list` can count edges) without the weights."""
    _check_name(name)
    hub_name = name.removeprefix(RANDOM_PREFIX)
    if hub_name in HUB_ARCHITECTURES:
        config = HUB_ARCHITECTURES[hub_name].config
        n_layers = config["n_layers"]
        mlp_layers = tuple(not config.get("attn_only", False) for _ in range(n_layers))
        return Graph(GraphSpec(n_layers, config["n_heads"], mlp_layers, bool(config.get("parallel_attn_mlp", False))))
    return Graph.from_model(load_model(name))
