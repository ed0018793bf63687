"""The worker's model cache (`bench.model_cache`): one load for many runs on a model, at most
`size` models kept, and a model a run changed (weights, hooks, gradients, mode) never lent
again; the built-in training methods leave the model as loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformer_lens import HookedTransformer

from bench.model_cache import ModelCache, cache_key, leftovers
from bench.provenance import weights_sha256
from bench.runner import RunRequest, execute
from bench.zoo import load_model
from tests.conftest import tiny_model

TASK = "tracr-xproportion"


def counting_loader(calls: list[tuple[str, int]]) -> Callable[..., HookedTransformer]:
    def load(name: str, seed: int = 0, device: str = "cpu") -> HookedTransformer:
        calls.append((name, seed))
        return tiny_model(seed=seed)

    return load


def test_one_load_per_model_and_only_the_last_model_kept() -> None:
    calls: list[tuple[str, int]] = []
    cache = ModelCache(size=1, load=counting_loader(calls))
    first = cache.load("tracr-xproportion")
    cache.settle(weights_sha256(first))
    assert cache.load("tracr-xproportion", seed=2) is first  # a tracr model's weights ignore the seed
    cache.settle(weights_sha256(first))
    other = cache.load("tracr-reverse")
    cache.settle(weights_sha256(other))
    assert len(cache) == 1 and cache.loads == 2
    assert cache.load("tracr-xproportion") is not first  # dropped for tracr-reverse: loaded again
    assert cache.loads == 3


def test_the_seed_counts_where_the_weights_depend_on_it() -> None:
    assert cache_key("tracr-xproportion", 1, "cpu") == cache_key("tracr-xproportion", 2, "cpu")
    assert cache_key("random:gpt2@tiny", 1, "cpu") != cache_key("random:gpt2@tiny", 2, "cpu")
    assert cache_key("gpt2", 1, "cpu") == cache_key("gpt2", 2, "cpu")
    assert cache_key("gpt2", 0, "cpu") != cache_key("gpt2~bfloat16", 0, "cpu")


def test_a_model_a_run_changed_is_loaded_again() -> None:
    cache = ModelCache(load=counting_loader([]))
    model = cache.load("m")
    with torch.no_grad():
        model.blocks[0].attn.W_Q.data.add_(1.0)  # a method that edits weights (bypassing autograd)
    cache.settle(weights_sha256(model))
    assert cache.load("m") is not model and cache.loads == 2

    model = cache.load("m")
    cache.settle(weights_sha256(model))
    model.blocks[0].hook_resid_pre.add_hook(lambda x, hook: x)  # a hook left behind
    assert leftovers(model) == ["hook on blocks.0.hook_resid_pre"]
    assert cache.load("m") is not model and cache.loads == 3

    model = cache.load("m")
    model.train()
    cache.settle(weights_sha256(model))
    assert cache.load("m") is not model and cache.loads == 4

    model = cache.load("m")
    cache.settle(None)  # the run failed: whatever it left is not trusted
    assert cache.load("m") is not model and cache.loads == 5


def test_a_tracr_model_in_bfloat16_leaves_the_float32_one_alone() -> None:
    assert next(load_model(f"{TASK}~bfloat16").parameters()).dtype == torch.bfloat16
    assert next(load_model(TASK).parameters()).dtype == torch.float32


@pytest.mark.parametrize("method", ["edge-pruning", "subnetwork-probing", "eap-ig-inputs", "acdc"])
def test_built_in_methods_leave_the_model_as_loaded(method: str, tmp_path: Path) -> None:
    cache = ModelCache()
    options = {"steps": 3} if method in ("edge-pruning", "subnetwork-probing") else {}
    request = RunRequest(method, TASK, options=options)
    result, _ = execute(request, tmp_path / "a", load=cache.load)
    model = cache.load(TASK)  # before settle: the same object, whatever the run did
    assert leftovers(model) == []
    assert result.model_identity["weights_sha256"] == weights_sha256(load_model(TASK))
    cache.settle(result.model_identity["weights_sha256"])
    again, _ = execute(request, tmp_path / "b", load=cache.load)  # on the kept model
    assert cache.loads == 1
    assert again.edge_scores == result.edge_scores
