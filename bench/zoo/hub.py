"""Loading real hub models through TransformerLens, and saying in one line when we cannot.

torch, TransformerLens and transformers are imported by the loaders, not here, so whether a hub
model is available (`availability`, shown by `bench list`) costs none of them."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from bench.zoo.architectures import STRUCTURAL_FIELDS, HubArchitecture

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedTokenizerBase


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded on this machine; the message is one line saying why and what to do."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A fast TCP probe, so an offline machine fails in seconds instead of retrying for a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def weights_cached(arch: HubArchitecture) -> bool:
    """Whether the local Hugging Face cache holds files of this model beyond its config."""
    from huggingface_hub import scan_cache_dir

    try:
        cache = scan_cache_dir()
    except Exception:  # no cache directory yet
        return False
    return any(repo.repo_id == arch.repo_id and repo.size_on_disk > 1_000_000 for repo in cache.repos)


def availability(arch: HubArchitecture) -> tuple[bool, str]:
    """(available, one-line reason) without downloading anything."""
    if weights_cached(arch):
        return True, "weights in the local Hugging Face cache"
    if hub_reachable():
        return True, f"downloadable from {hub_endpoint()}"
    return False, "not cached and the Hugging Face hub is unreachable"


def unavailable_message(arch: HubArchitecture) -> str:
    return (
        f"model {arch.name!r} is unavailable: its weights ({arch.repo_id}) are not in the local "
        f"Hugging Face cache and {hub_endpoint()} is unreachable; run once online, or copy the "
        f"repository snapshot into $HF_HOME/hub, or use 'random:{arch.name}' for a random-weight "
        "model of the same shape"
    )


def load_hub_model(arch: HubArchitecture, device: str = "cpu", dtype: str = "float32") -> HookedTransformer:
    """Load the real pretrained weights in `dtype`; raise `ModelUnavailable` (one line) when offline.
    Grouped-query models keep their grouped weights; the runtime runs them ungrouped."""
    import torch
    from transformer_lens import HookedTransformer

    if not weights_cached(arch) and not hub_reachable():
        raise ModelUnavailable(unavailable_message(arch))
    try:
        kwargs = dict(arch.load_kwargs)
        if dtype != "float32":
            kwargs["dtype"] = getattr(torch, dtype)
        model = HookedTransformer.from_pretrained(arch.name, device=device, **kwargs)
    except OSError as err:
        raise ModelUnavailable(f"{unavailable_message(arch)} ({type(err).__name__})") from err
    mismatched = {
        key: (getattr(model.cfg, key), expected)
        for key, expected in arch.config.items()
        if key in STRUCTURAL_FIELDS and getattr(model.cfg, key) != expected
    }
    if mismatched:
        raise RuntimeError(
            f"model {arch.name!r} loaded with a shape that differs from bench/zoo/architectures.py: "
            f"{mismatched} (loaded, expected); fix the table so random:{arch.name} stays cost-equivalent"
        )
    return model


def random_hub_model(
    arch: HubArchitecture, seed: int, device: str = "cpu", dtype: str = "float32"
) -> HookedTransformer:
    """The same architecture with seeded random weights (nothing downloaded); it has the real
    tokenizer only when that is cached locally (and the vocabulary was not resized). The
    weights are drawn in float32 and then cast, so a bf16 model is the fp32 one rounded."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    fields = {k: v for k, v in arch.config.items() if k != "tokenizer_name"}
    cfg = HookedTransformerConfig(**fields, seed=seed, device=device, model_name=f"random:{arch.name}")
    torch.manual_seed(seed)
    model = HookedTransformer(cfg, tokenizer=cached_tokenizer(arch))
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
        model.cfg.dtype = getattr(torch, dtype)
    return model


def cached_tokenizer(arch: HubArchitecture) -> PreTrainedTokenizerBase | None:
    """The real tokenizer when it is already in the local cache (never downloaded here), so a
    random-weight stand-in can run text tasks at the real model's cost."""
    from transformers import AutoTokenizer

    name = arch.config.get("tokenizer_name")
    if name is None:
        return None
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError:
        return None
