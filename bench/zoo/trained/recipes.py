"""What decides each trained model's weights: one frozen recipe per model name.

Kept free of tracr, torch and training imports (TransformerLens's config class is imported when a
config is built), so `bench list`, `bench models list` and `model_status` stay fast. A recipe is
stored in its model card; a cached model whose recipe differs is stale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformer_lens import HookedTransformerConfig


@dataclass(frozen=True)
class SiitRecipe:
    """A low-level model trained with SIIT to implement a Tracr program.

    Args:
        program: the Tracr program (see `programs.PROGRAMS`).
        d_model, n_heads, d_head, d_mlp: the low-level shape (layers follow the program's).
    """

    program: str
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    d_mlp: int = 128
    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    behaviour_weight: float = 1.0
    interchange_weight: float = 1.0
    strict_weight: float = 1.0

    def config(self, shape: dict[str, int] | None) -> HookedTransformerConfig:
        """`shape`: n_layers, d_vocab, d_vocab_out and n_ctx of the Tracr model."""
        if shape is None:
            raise ValueError(f"SIIT model of {self.program!r} needs the Tracr model's shape")
        from transformer_lens import HookedTransformerConfig

        return HookedTransformerConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            act_fn="gelu",
            normalization_type="LN",
            attention_dir="bidirectional",  # as the Tracr model it mirrors
            seed=self.seed,
            device="cpu",
            **shape,
        )


@dataclass(frozen=True)
class InductionRecipe:
    """A 2-layer attention-only model trained on random tokens with repeated segments."""

    d_model: int = 64
    n_heads: int = 8
    d_head: int = 8
    d_vocab: int = 64
    n_ctx: int = 32
    steps: int = 2500
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    min_segment: int = 4
    max_segment: int = 12

    def config(self, shape: dict[str, int] | None = None) -> HookedTransformerConfig:
        from transformer_lens import HookedTransformerConfig

        return HookedTransformerConfig(
            n_layers=2,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            d_vocab=self.d_vocab,
            n_ctx=self.n_ctx,
            attn_only=True,
            normalization_type="LN",
            act_fn="relu",
            seed=self.seed,
            device="cpu",
        )


Recipe = SiitRecipe | InductionRecipe

RECIPES: dict[str, Recipe] = {
    "siit-reverse": SiitRecipe("reverse"),
    # A numerical output must land within 0.025 of the program's value: more steps.
    "siit-xproportion": SiitRecipe("xproportion", steps=3000),
    "siit-sort": SiitRecipe("sort"),
    "siit-hist": SiitRecipe("hist"),
    "induction-2l": InductionRecipe(),
}


def recipe_dict(recipe: Recipe) -> dict[str, Any]:
    return {"kind": "siit" if isinstance(recipe, SiitRecipe) else "induction", **asdict(recipe)}
