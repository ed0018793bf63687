"""The models a long-lived worker process keeps between runs, so a Ray worker that gets several
runs on one model loads it once.

Only the Ray executor uses it (`bench.ray_executor.compute_result`); a local `run --all` loads
each run's model afresh, as before. The cache is bounded (default: the last model only), so a
worker never holds more than `size` models, and a model is lent to the next run only if the
last run left it as it was loaded: same weights (sha256), same config, no hook, no gradient,
eval mode. Built-in methods never change a model (the runtime freezes the weights; Edge Pruning
and subnetwork probing train gates of their own); the checks are for plugin methods.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

CacheKey = tuple[str, int | None, str]
"""(model name with its `~dtype`, seed or None where the model's weights ignore it, device)."""


@dataclass
class _Entry:
    model: HookedTransformer
    weights_sha256: str
    config: str


def cache_key(name: str, seed: int, device: str) -> CacheKey:
    """Runs that may share a model: the seed counts only for models whose weights depend on it."""
    from bench.zoo import seed_dependent

    return (name, seed if seed_dependent(name) else None, device)


def leftovers(model: HookedTransformer) -> list[str]:
    """What a run left on `model` that the next run must not see (empty when clean)."""
    found = []
    if model.training:
        found.append("train mode")
    for name, module in model.named_modules():
        hooks = [module._forward_hooks, module._forward_pre_hooks, module._backward_hooks]
        hooks.append(getattr(module, "_backward_pre_hooks", {}))
        if any(hooks):
            found.append(f"hook on {name or 'the model'}")
    if any(p.grad is not None for p in model.parameters()):
        found.append("gradients on the weights")
    return found


class ModelCache:
    """At most `size` models of this process, the least recently used dropped first.

    Args:
        size: how many models to keep (1: the last one).
        load: the loader, `(name, seed=, device=) -> HookedTransformer` (default
            `bench.zoo.load_model`).

    Attributes:
        loads: how many times this cache called the loader (for tests and logs).
    """

    def __init__(self, size: int = 1, load: Callable[..., HookedTransformer] | None = None) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._load = load
        self._models: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lent: CacheKey | None = None
        self.loads = 0

    def load(self, name: str, seed: int = 0, device: str = "cpu") -> HookedTransformer:
        """The model `name` for one run: the kept one when the last run left it clean, else a
        fresh load. Call `settle` after the run."""
        key = cache_key(name, seed, device)
        entry = self._models.get(key)
        if entry is not None and not leftovers(entry.model) and repr(entry.model.cfg) == entry.config:
            self._models.move_to_end(key)
        else:
            self._drop(key)
            while len(self._models) >= self.size:
                self._drop(next(iter(self._models)))
            entry = self._fresh(name, seed, device)
            self._models[key] = entry
        self._lent = key
        return entry.model

    def settle(self, weights_sha256: str | None) -> None:
        """After a run on the model last lent: keep it only when its weights hash (the run's
        result records one) is the one it was loaded with; None (the run failed) drops it."""
        key, self._lent = self._lent, None
        if key is None or key not in self._models:
            return
        if weights_sha256 is None or weights_sha256 != self._models[key].weights_sha256:
            self._drop(key)

    def clear(self) -> None:
        for key in list(self._models):
            self._drop(key)

    def __len__(self) -> int:
        return len(self._models)

    def _fresh(self, name: str, seed: int, device: str) -> _Entry:
        from bench.provenance import weights_sha256
        from bench.zoo import load_model

        model = (self._load or load_model)(name, seed=seed, device=device)
        self.loads += 1
        return _Entry(model, weights_sha256(model), repr(model.cfg))

    def _drop(self, key: CacheKey) -> None:
        """Forget one model and give its memory back (on a GPU too) before another loads."""
        if self._models.pop(key, None) is None:
            return
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
