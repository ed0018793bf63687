"""Shared fixtures: tiny random-initialised models of the shapes the graph must handle, and
result files to draw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.runtime import enable_edge_hooks

TINY_SHAPES = {
    "ln-gelu": {},
    "no-norm": {"normalization_type": None},
    "attn-only-shortformer": {"attn_only": True, "positional_embedding_type": "shortformer"},
    "parallel-rotary": {"parallel_attn_mlp": True, "positional_embedding_type": "rotary", "rotary_dim": 8},
}


def tiny_model(shape: str = "ln-gelu", dtype: torch.dtype = torch.float32, seed: int = 0) -> HookedTransformer:
    """A 3-layer, 4-head random model; fields from TINY_SHAPES[shape] override the defaults."""
    fields = {
        "n_layers": 3,
        "d_model": 32,
        "n_ctx": 16,
        "d_head": 8,
        "n_heads": 4,
        "d_mlp": 64,
        "d_vocab": 50,
        "act_fn": "gelu",
        "normalization_type": "LN",
        "seed": seed,
        "dtype": dtype,
    }
    fields.update(TINY_SHAPES[shape])
    model = HookedTransformer(HookedTransformerConfig(**fields))
    # Random init leaves biases at zero; give them values so bias handling is tested too.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for name, param in model.named_parameters():
            if name.split(".")[-1].startswith("b_"):
                param.copy_(0.1 * torch.randn(param.shape, generator=gen, dtype=param.dtype))
    model.eval()
    return enable_edge_hooks(model)


@pytest.fixture(params=list(TINY_SHAPES))
def any_tiny_model(request: pytest.FixtureRequest) -> HookedTransformer:
    return tiny_model(request.param)


@pytest.fixture
def token_pair() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 50, (3, 7), generator=gen), torch.randint(0, 50, (3, 7), generator=gen)


@pytest.fixture(scope="session")
def tracr_reverse_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Result files of three methods on tracr-reverse (zero ablation, 30 examples): a graph of 77
    edges with a 13-edge ground truth, for the tests that draw circuits."""
    from bench.runner import RunRequest, execute

    root = tmp_path_factory.mktemp("tracr-reverse-results")
    for method in ("exact-patching", "eap", "random"):
        execute(RunRequest(method, "tracr-reverse", ablation="zero", n_examples=30), root)
    return root
