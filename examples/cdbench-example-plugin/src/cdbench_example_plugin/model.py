"""A model: a 2-layer attention + MLP transformer with seeded random weights (no download)."""

from __future__ import annotations

from transformer_lens import HookedTransformer, HookedTransformerConfig

VOCAB = 16


def tiny_model(seed: int = 0, device: str = "cpu") -> HookedTransformer:
    """2 layers x 4 heads, d_model 32, vocabulary of 16, seeded random weights."""
    config = HookedTransformerConfig(
        n_layers=2,
        d_model=32,
        n_ctx=8,
        d_head=8,
        n_heads=4,
        d_mlp=64,
        d_vocab=VOCAB,
        act_fn="gelu",
        normalization_type="LN",
        seed=seed,
        device=device,
    )
    return HookedTransformer(config)
