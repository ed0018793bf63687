"""The model zoo: every model a task can name, how to load it, and whether it is available here.

Names:
    `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `attn-only-4l`, `redwood_attn_2l`:
        real weights from the Hugging Face hub, through TransformerLens.
    `EleutherAI/pythia-70m` ... `pythia-2.8b`, `Qwen/Qwen2.5-0.5B`, `google/gemma-2-2b`,
    `meta-llama/Llama-3.2-1B`, `meta-llama/Llama-3.1-8B`, `mistralai/Mistral-7B-v0.1` (aliases
        `qwen2.5`, `gemma2`, `llama3`, ...: `bench.zoo.architectures.ALIASES`): the same.
    `random:<hub name>`: the same architecture with seeded random weights (offline);
        `random:<hub name>@tiny` or `@n_layers=2,d_model=64,...` resizes it, flags kept.
    `tracr-reverse`, `tracr-xproportion`: compiled here with tracr from the RASP program files
        in `bench.zoo.tracr_programs` (`tracr-<stem>`, one per file there).
    `siit-reverse`, `siit-xproportion`, `siit-sort`, `siit-hist`, `induction-2l`: trained here
        with known circuits; their weights ship with CDBench (`bench.zoo.trained.published`).
    Any name a plugin registers with `bench.api.register_model` (`bench.model_registry.MODELS`).
    A checkpoint directory, or `local:<name>@<hash>`: a user's own model (`bench.zoo.local`).

Names, statuses and edge counts cost no torch, TransformerLens or jax (loading does), so
`bench list` answers fast; tests/test_layering.py holds the zoo to that.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.model_registry import MODELS
from bench.registry import UnknownNameError
from bench.zoo.architectures import HUB_ARCHITECTURES, HubArchitecture, resolve_architecture
from bench.zoo.hub import ModelUnavailable, availability, load_hub_model, random_hub_model
from bench.zoo.local import is_local_name, load_local
from bench.zoo.tracr_programs import model_names as tracr_model_names
from bench.zoo.tracr_programs import program_of
from bench.zoo.trained import TRAINED_MODELS, load_trained, trained_status

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from bench.graph import Graph

RANDOM_PREFIX = "random:"
DTYPE_SEPARATOR = "~"
DTYPES = ("float32", "bfloat16", "float16")
"""Precisions a model runs in: `<model>~bfloat16` (or `bench run --dtype bfloat16`) is that model
in bf16, a model (and a result key) of its own; no suffix means float32."""


def split_dtype(name: str) -> tuple[str, str]:
    """`"llama3~bfloat16"` -> `("llama3", "bfloat16")`; no suffix -> float32.

    Raises:
        UnknownNameError: an unknown precision after `~` (the message lists the valid ones).
    """
    base, sep, dtype = name.partition(DTYPE_SEPARATOR)
    if not sep:
        return name, "float32"
    if dtype not in DTYPES:
        raise UnknownNameError("dtype", dtype, list(DTYPES))
    return base, dtype


def with_dtype(name: str, dtype: str | None) -> str:
    """The model name a run in `dtype` is keyed by (float32 keeps the plain name, so existing
    results keep their keys)."""
    base, current = split_dtype(name)
    dtype = dtype or current
    if dtype not in DTYPES:
        raise UnknownNameError("dtype", dtype, list(DTYPES))
    return base if dtype == "float32" else f"{base}{DTYPE_SEPARATOR}{dtype}"


def best_device() -> str:
    """The best device here for every method: CUDA, else the CPU. Apple's MPS is used only when
    asked for (`--device mps`): it has no float64, which ACDC's tau sweep keeps its scores in."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


__all__ = ["ModelStatus", "ModelUnavailable", "load_model", "model_graph", "model_names", "model_status"]


@dataclass(frozen=True)
class ModelStatus:
    name: str
    kind: str  # "hub", "random", "tracr", "trained", "plugin" or "local"
    available: bool
    reason: str


def model_names(include_random: bool = True) -> list[str]:
    names = [*HUB_ARCHITECTURES, *tracr_model_names(), *TRAINED_MODELS]
    if include_random:
        names += [RANDOM_PREFIX + name for name in HUB_ARCHITECTURES]
    return names + MODELS.names()


def _is_user_model(name: str) -> bool:
    """A checkpoint directory or a model registered in this process; a zoo name wins over a
    directory of the same name."""
    return name not in model_names() and is_local_name(name)


def hub_architecture(name: str) -> HubArchitecture | None:
    """The architecture of a hub name, alias or `random:` name (resized after `@`), else None.

    Raises:
        UnknownNameError: a malformed size after `@` (the message names the valid fields).
    """
    try:
        return resolve_architecture(name.removeprefix(RANDOM_PREFIX))
    except ValueError as err:
        unknown = UnknownNameError("model", name, model_names())
        unknown.message = f"bad model name {name!r}: {err}"
        raise unknown from None


def is_model_name(name: str) -> bool:
    """Whether `name` names a zoo model (aliases, resized `random:` models and `~dtype` included)."""
    name = split_dtype(name)[0]
    if name in model_names():
        return True
    arch = hub_architecture(name)
    # Real weights exist only at the hub's own size.
    return arch is not None and (name.startswith(RANDOM_PREFIX) or "@" not in name)


def _check_name(name: str) -> None:
    if not is_local_name(split_dtype(name)[0]) and not is_model_name(name):
        raise UnknownNameError("model", name, [*model_names(), "PATH (a Hugging Face checkpoint directory)"])


def model_status(name: str) -> ModelStatus:
    """Whether `name` can be loaded here, without loading or downloading it."""
    _check_name(name)
    name = split_dtype(name)[0]
    if _is_user_model(name):
        return ModelStatus(name, "local", True, "a local checkpoint or a model given from Python")
    if program_of(name) is not None:
        return ModelStatus(name, "tracr", True, "compiled locally with tracr")
    if name in TRAINED_MODELS:
        return ModelStatus(name, "trained", *trained_status(name))
    if name.startswith(RANDOM_PREFIX):
        return ModelStatus(name, "random", True, "random weights, built locally")
    if name in MODELS:
        return ModelStatus(name, "plugin", True, MODELS.get(name).description)
    ok, reason = availability(hub_architecture(name))
    return ModelStatus(name, "hub", ok, reason)


def seed_dependent(name: str) -> bool:
    """Whether `load_model(name, seed)` gives different weights for different seeds: random and
    plugin models (a plugin's loader takes the seed), and any name not known to ignore it."""
    name = split_dtype(name)[0]
    if _is_user_model(name) or program_of(name) is not None or name in TRAINED_MODELS:
        return False
    if name in MODELS or name.startswith(RANDOM_PREFIX):
        return True
    return hub_architecture(name) is None


def load_model(name: str, seed: int = 0, device: str = "cpu", dtype: str | None = None) -> HookedTransformer:
    """Load a zoo model in eval mode with the graph's hooks enabled (a trained model from its
    shipped weights, checked against their sha256), in `dtype` (default: the name's `~dtype`
    suffix, else float32) on `device` ("auto": `best_device()`).

    Raises:
        UnknownNameError: `name` is not in the zoo (the message lists the valid names).
        ModelUnavailable: a hub model whose weights cannot be reached, or a trained model whose
            shipped weights are missing or altered (one-line message).
    """
    import torch

    from bench.runtime import enable_edge_hooks

    _check_name(name)
    name, named_dtype = split_dtype(name)
    dtype = dtype or named_dtype
    device = best_device() if device == "auto" else device
    converted_here = True  # built at float32; moved to the device and precision below
    if _is_user_model(name):
        model = load_local(name, device)
    elif (program := program_of(name)) is not None:
        from bench.zoo.tracr_models import build_tracr_model

        # the compiled program is cached per process; each load gets its own copy, so a
        # precision or device change here never reaches another load's model
        model = copy.deepcopy(build_tracr_model(program).model)
    elif name in TRAINED_MODELS:
        model = load_trained(name)
    elif name in MODELS:
        model = MODELS.get(name).load(seed, device)
    elif name.startswith(RANDOM_PREFIX):
        model, converted_here = random_hub_model(hub_architecture(name), seed, device, dtype), False
    else:
        model, converted_here = load_hub_model(hub_architecture(name), device, dtype), False
    if converted_here:
        if next(model.parameters()).device != torch.device(device):  # TransformerLens's .to prints a line
            model = model.to(device)
        if dtype != "float32":
            model = model.to(getattr(torch, dtype))
            model.cfg.dtype = getattr(torch, dtype)
    model.eval()
    return enable_edge_hooks(model)


def model_graph(name: str) -> Graph:
    """The edge graph of a zoo model. For hub models it comes from the architecture table, so
    ground truth can be checked (and `bench list` can count edges) without the weights."""
    from bench.graph import Graph, GraphSpec

    _check_name(name)
    name = split_dtype(name)[0]
    arch = hub_architecture(name)
    if arch is not None:
        config = arch.config
        n_layers = config["n_layers"]
        mlp_layers = tuple(not config.get("attn_only", False) for _ in range(n_layers))
        return Graph(GraphSpec(n_layers, config["n_heads"], mlp_layers, bool(config.get("parallel_attn_mlp", False))))
    return Graph.from_model(load_model(name))
