"""Architectures of the hub models, written down so they can be built offline.

TransformerLens reads these configs from the Hugging Face hub, which these machines
cannot reach. A randomly initialised model of the same shape costs exactly what the
real one costs, so tests and speed benchmarks use `random:<name>` built from here.
When a real model loads, `hub.load_hub_model` checks its config against this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HubArchitecture:
    """One hub model: where its weights live and the shape TransformerLens gives it.

    Attributes:
        name: the CDBench / TransformerLens name.
        repo_id: the Hugging Face repository TransformerLens downloads.
        config: `HookedTransformerConfig` fields that fix the architecture.
        load_kwargs: extra `from_pretrained` arguments the peers use for this model.
        source: where the shape comes from.
    """

    name: str
    repo_id: str
    config: dict[str, Any]
    source: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)


def _gpt2(n_layers: int, d_model: int, n_heads: int) -> dict[str, Any]:
    return {
        "n_layers": n_layers,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_model // n_heads,
        "d_mlp": 4 * d_model,
        "n_ctx": 1024,
        "d_vocab": 50257,
        "act_fn": "gelu_new",
        "normalization_type": "LN",
        "positional_embedding_type": "standard",
        "tokenizer_name": "gpt2",
    }


_GPT2_SOURCE = "Radford et al. 2019; Hugging Face config.json of the repository (n_layer, n_embd, n_head)"

HUB_ARCHITECTURES: dict[str, HubArchitecture] = {
    arch.name: arch
    for arch in [
        HubArchitecture("gpt2", "gpt2", _gpt2(12, 768, 12), _GPT2_SOURCE),
        HubArchitecture("gpt2-medium", "gpt2-medium", _gpt2(24, 1024, 16), _GPT2_SOURCE),
        HubArchitecture("gpt2-large", "gpt2-large", _gpt2(36, 1280, 20), _GPT2_SOURCE),
        HubArchitecture("gpt2-xl", "gpt2-xl", _gpt2(48, 1600, 25), _GPT2_SOURCE),
        HubArchitecture(
            "attn-only-4l",
            "NeelNanda/Attn_Only_4L512W_C4_Code",
            {
                "n_layers": 4,
                "d_model": 512,
                "n_heads": 8,
                "d_head": 64,
                "n_ctx": 1024,
                "d_vocab": 48262,
                "attn_only": True,
                "act_fn": "gelu",
                "normalization_type": "LN",
                "positional_embedding_type": "standard",
                "tokenizer_name": "NeelNanda/gpt-neox-tokenizer-digits",
            },
            "TransformerLens model table (NeelNanda/Attn_Only_4L512W_C4_Code); ACDC docstring task",
        ),
        HubArchitecture(
            "redwood_attn_2l",
            "ArthurConmy/redwood_attn_2l",
            {
                "n_layers": 2,
                "d_model": 256,
                "n_heads": 8,
                "d_head": 32,
                "n_ctx": 2048,
                "d_vocab": 50259,
                "attn_only": True,
                "act_fn": "gelu",
                "normalization_type": "LN",
                "positional_embedding_type": "shortformer",
            },
            "ACDC induction task (acdc/induction/utils.py builds this config for the Redwood model)",
            # Shortformer models must not have their writing weights centred (ACDC, induction/utils.py).
            {"center_writing_weights": False, "center_unembed": False, "fold_ln": False},
        ),
    ]
}

STRUCTURAL_FIELDS = ("n_layers", "d_model", "n_heads", "d_head", "attn_only", "positional_embedding_type")
