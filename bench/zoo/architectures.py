"""Architectures of the hub models, written down so they can be built offline.

TransformerLens reads these configs from the Hugging Face hub, which these machines
cannot reach. A randomly initialised model of the same shape costs exactly what the
real one costs, so tests and speed benchmarks use `random:<name>` built from here.
When a real model loads, `hub.load_hub_model` checks its config against this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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


def _pythia(n_layers: int, d_model: int, n_heads: int) -> dict[str, Any]:
    """GPT-NeoX as TransformerLens builds Pythia: parallel attention and MLP, rotary on a
    quarter of each head's dimensions, LayerNorm, untied embeddings."""
    d_head = d_model // n_heads
    return {
        "n_layers": n_layers,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "d_mlp": 4 * d_model,
        "n_ctx": 2048,
        "d_vocab": 50304,
        "eps": 1e-5,
        "act_fn": "gelu",
        "normalization_type": "LN",
        "positional_embedding_type": "rotary",
        "rotary_dim": d_head // 4,
        "rotary_adjacent_pairs": False,
        "parallel_attn_mlp": True,
        "default_prepend_bos": False,
        "tokenizer_name": "EleutherAI/pythia-70m",
    }


def _llama3(n_layers: int, d_model: int, n_heads: int, d_mlp: int, ntk_factor: float) -> dict[str, Any]:
    """Llama 3.x: RMSNorm, gated SiLU MLP, grouped-query attention (8 kv heads), rotary with
    NTK-by-parts scaling; n_ctx capped at 2048 as TransformerLens does."""
    return {
        "n_layers": n_layers,
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_model // n_heads,
        "d_mlp": d_mlp,
        "n_ctx": 2048,
        "eps": 1e-5,
        "d_vocab": 128256,
        "act_fn": "silu",
        "n_key_value_heads": 8,
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "rotary_adjacent_pairs": False,
        "rotary_dim": d_model // n_heads,
        "final_rms": True,
        "gated_mlp": True,
        "rotary_base": 500000.0,
        "use_NTK_by_parts_rope": True,
        "NTK_by_parts_low_freq_factor": 1.0,
        "NTK_by_parts_high_freq_factor": 4.0,
        "NTK_by_parts_factor": ntk_factor,
        "NTK_original_ctx_len": 8192,
    }


_PYTHIA_SOURCE = (
    "Biderman et al. 2023, Table 1; Hugging Face config.json (hidden_size, num_attention_heads, rotary_pct 0.25)"
)
_TL_SOURCE = "TransformerLens 3.9 loading_from_pretrained.py (hard-coded config of this model)"

_MODERN = [
    *(
        HubArchitecture(f"EleutherAI/pythia-{size}", f"EleutherAI/pythia-{size}", _pythia(*shape), _PYTHIA_SOURCE)
        for size, shape in [
            ("70m", (6, 512, 8)),
            ("160m", (12, 768, 12)),
            ("410m", (24, 1024, 16)),
            ("1b", (16, 2048, 8)),
            ("1.4b", (24, 2048, 16)),
            ("2.8b", (32, 2560, 32)),
        ]
    ),
    HubArchitecture(
        "Qwen/Qwen2.5-0.5B",
        "Qwen/Qwen2.5-0.5B",
        {
            "n_layers": 24,
            "d_model": 896,
            "n_heads": 14,
            "d_head": 64,
            "d_mlp": 4864,
            "n_ctx": 2048,
            "eps": 1e-6,
            "d_vocab": 151936,
            "act_fn": "silu",
            "n_key_value_heads": 2,
            "normalization_type": "RMS",
            "positional_embedding_type": "rotary",
            "rotary_base": 1000000,
            "rotary_adjacent_pairs": False,
            "rotary_dim": 64,
            "final_rms": True,
            "gated_mlp": True,
            "use_attn_scale": True,
            "default_prepend_bos": False,
            "tokenizer_name": "Qwen/Qwen2.5-0.5B",
        },
        "Hugging Face config.json of Qwen/Qwen2.5-0.5B (hidden 896, 14 heads, 2 kv heads, 24 layers, "
        "intermediate 4864, rope_theta 1e6); n_ctx capped at 2048; fields as TransformerLens's Qwen2 branch",
    ),
    HubArchitecture(
        "google/gemma-2-2b",
        "google/gemma-2-2b",
        {
            "n_layers": 26,
            "d_model": 2304,
            "n_heads": 8,
            "d_head": 256,
            "d_mlp": 9216,
            "n_ctx": 8192,
            "eps": 1e-6,
            "d_vocab": 256000,
            "act_fn": "gelu_pytorch_tanh",
            "normalization_type": "RMS",
            "rotary_base": 10000.0,
            "positional_embedding_type": "rotary",
            "use_attn_scale": True,
            "n_key_value_heads": 4,
            "window_size": 4096,
            "use_local_attn": True,
            "attn_types": ["local", "global"] * 13,
            "attn_scores_soft_cap": 50.0,
            "output_logits_soft_cap": 30.0,
            "gated_mlp": True,
            "final_rms": True,
            "use_normalization_before_and_after": True,
            "tokenizer_name": "google/gemma-2-2b",
        },
        _TL_SOURCE,
    ),
    HubArchitecture(
        "meta-llama/Llama-3.2-1B",
        "meta-llama/Llama-3.2-1B",
        {**_llama3(16, 2048, 32, 8192, 32.0), "tokenizer_name": "meta-llama/Llama-3.2-1B"},
        _TL_SOURCE,
    ),
    HubArchitecture(
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-8B",
        {**_llama3(32, 4096, 32, 14336, 8.0), "tokenizer_name": "meta-llama/Llama-3.1-8B"},
        _TL_SOURCE,
    ),
    HubArchitecture(
        "mistralai/Mistral-7B-v0.1",
        "mistralai/Mistral-7B-v0.1",
        {
            "n_layers": 32,
            "d_model": 4096,
            "n_heads": 32,
            "d_head": 128,
            "d_mlp": 14336,
            "n_ctx": 2048,
            "d_vocab": 32000,
            "act_fn": "silu",
            "window_size": 4096,
            "attn_types": ["local"] * 32,
            "eps": 1e-5,
            "rotary_base": 10000.0,
            "n_key_value_heads": 8,
            "use_local_attn": True,
            "normalization_type": "RMS",
            "positional_embedding_type": "rotary",
            "gated_mlp": True,
            "tokenizer_name": "mistralai/Mistral-7B-v0.1",
        },
        "Hugging Face config.json of mistralai/Mistral-7B-v0.1 (sliding_window 4096, 8 kv heads); "
        "fields as TransformerLens's Mistral branch (n_ctx capped at 2048)",
    ),
]
HUB_ARCHITECTURES.update({arch.name: arch for arch in _MODERN})

ALIASES: dict[str, str] = {
    "gpt2-small": "gpt2",
    "qwen2.5": "Qwen/Qwen2.5-0.5B",
    "gemma2": "google/gemma-2-2b",
    "llama3": "meta-llama/Llama-3.1-8B",
    "llama3.2-1b": "meta-llama/Llama-3.2-1B",
    "mistral": "mistralai/Mistral-7B-v0.1",
    **{f"pythia-{size}": f"EleutherAI/pythia-{size}" for size in ("70m", "160m", "410m", "1b", "1.4b", "2.8b")},
}
"""Short names (MIB's `qwen2.5`, `gemma2`, `llama3`, and a few more) for hub names."""

STRUCTURAL_FIELDS = (
    "n_layers",
    "d_model",
    "n_heads",
    "d_head",
    "d_mlp",
    "attn_only",
    "positional_embedding_type",
    "n_key_value_heads",
    "parallel_attn_mlp",
    "use_normalization_before_and_after",
)

SIZE_SEPARATOR = "@"
SIZE_FIELDS = ("n_layers", "d_model", "n_heads", "n_key_value_heads", "d_mlp", "d_vocab", "n_ctx", "window_size")
TINY = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_vocab": 512, "n_ctx": 256, "window_size": 8}
"""`@tiny`: a test size of any family (every architecture flag kept; the sliding window shrunk
to 8 tokens so it is exercised on short prompts)."""


def canonical_hub_name(name: str) -> str:
    """The hub name behind an alias (`llama3` -> `meta-llama/Llama-3.1-8B`); other names unchanged."""
    return ALIASES.get(name, name)


def resolve_architecture(name: str) -> HubArchitecture | None:
    """The architecture of `<hub name or alias>[@tiny | @field=value,...]`, resized when asked;
    None when the name before `@` is not in the table.

    Raises:
        ValueError: a malformed size or a field that cannot be set, naming the valid fields.
    """
    base, sep, size = name.partition(SIZE_SEPARATOR)
    arch = HUB_ARCHITECTURES.get(canonical_hub_name(base))
    if arch is None or not sep:
        return arch
    overrides = _parse_size(size)
    return replace(arch, name=f"{arch.name}{SIZE_SEPARATOR}{size}", config=resized_config(arch.config, overrides))


def _parse_size(size: str) -> dict[str, int]:
    if size == "tiny":
        return dict(TINY)
    overrides: dict[str, int] = {}
    for part in size.split(","):
        key, eq, value = part.partition("=")
        if not eq or key not in SIZE_FIELDS or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"bad model size {part!r} in {size!r}; use @tiny or @FIELD=POSITIVE_INT,... with FIELD one of "
                f"{', '.join(SIZE_FIELDS)}"
            )
        overrides[key] = int(value)
    return overrides


def resized_config(config: dict[str, Any], overrides: dict[str, int]) -> dict[str, Any]:
    """`config` with its sizes replaced, every flag kept and the dependent sizes following:
    d_head = d_model / n_heads, d_mlp and the rotary dimensions in their original ratio, the
    key/value groups as close to their original size as the new head count allows, the
    per-layer attention types cut or repeated to the new depth."""
    out = dict(config)
    known = {k: v for k, v in overrides.items() if k in config or k in ("n_key_value_heads", "window_size")}
    if "window_size" in known and not config.get("use_local_attn"):
        known.pop("window_size")
    if "n_key_value_heads" in known and "n_key_value_heads" not in config:
        known.pop("n_key_value_heads")
    out.update(known)
    if out["d_vocab"] != config["d_vocab"]:
        out.pop("tokenizer_name", None)  # the real tokenizer would emit ids past the vocabulary
    n_heads, d_model = out["n_heads"], out["d_model"]
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
    if "d_model" in overrides or "n_heads" in overrides:
        out["d_head"] = d_model // n_heads
        if "d_mlp" in config and "d_mlp" not in overrides:
            out["d_mlp"] = max(1, round(config["d_mlp"] * d_model / config["d_model"]))
        if "rotary_dim" in config:
            out["rotary_dim"] = max(2, 2 * round(config["rotary_dim"] / config["d_head"] * out["d_head"] / 2))
    if "n_key_value_heads" in config and "n_key_value_heads" not in overrides:
        group = config["n_heads"] // config["n_key_value_heads"]
        out["n_key_value_heads"] = max(1, n_heads // group)
    if out.get("n_key_value_heads") and n_heads % out["n_key_value_heads"]:
        raise ValueError(f"n_heads={n_heads} is not a multiple of n_key_value_heads={out['n_key_value_heads']}")
    if config.get("attn_types"):
        types = config["attn_types"]
        out["attn_types"] = [types[i % len(types)] for i in range(out["n_layers"])]
    return out


def edge_count(config: dict[str, Any]) -> int:
    """Edges of CDBench's (= MIB's) graph for an architecture, by closed form (no torch):
    each of a layer's n_heads query heads has a q, k and v input (keys and values ungrouped)
    reading every earlier source, the MLP also reads its own layer's heads unless it runs in
    parallel, and the logits read every source."""
    n_layers, n_heads = config["n_layers"], config["n_heads"]
    mlp = 0 if config.get("attn_only", False) else 1
    parallel = bool(config.get("parallel_attn_mlp", False))
    total = 0
    for layer in range(n_layers):
        upstream = 1 + layer * (n_heads + mlp)
        total += 3 * n_heads * upstream
        if mlp:
            total += upstream + (0 if parallel else n_heads)
    return total + 1 + n_layers * (n_heads + mlp)


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of the TransformerLens model built from `config` (GQA keys and values stored
    grouped; biases counted where TransformerLens creates them), for memory estimates."""
    d, h, e, n = config["d_model"], config["n_heads"], config["d_head"], config["n_layers"]
    kv = config.get("n_key_value_heads") or h
    vocab = config["d_vocab"]
    attn = d * h * e * 2 + d * kv * e * 2 + h * e + 2 * kv * e + d
    mlp = 0
    if not config.get("attn_only", False):
        d_mlp = config["d_mlp"]
        mlp = d * d_mlp * (3 if config.get("gated_mlp") else 2) + d_mlp + d
    norms = d * (4 if config.get("use_normalization_before_and_after") else 2) * 2
    embed = vocab * d + (config["n_ctx"] * d if config.get("positional_embedding_type") == "standard" else 0)
    unembed = d * vocab + vocab
    return n * (attn + mlp + norms) + embed + unembed + 2 * d
