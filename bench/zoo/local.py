"""A researcher's own model: a local Hugging Face checkpoint directory, or a model object from Python.

`--model PATH` takes a directory written by `save_pretrained` (config.json, the weights, and
ideally the tokenizer). It loads offline: the TransformerLens config is built here from the
directory's own config.json, through a table keyed by the checkpoint's architecture
(`LOCAL_ARCHITECTURES`), and the weights are converted with TransformerLens's own conversion
function for that architecture. TransformerLens's `from_pretrained` is not used, since it
resolves configs through the hub. The model is processed as `from_pretrained` processes hub
models by default (LayerNorm folded, writing weights and unembedding centred), so a local copy
of GPT-2 and the hub's `gpt2` are the same model to every method.

Each model gets a name of its own: `local:<directory name>@<10 hex digits>`, the digits from
the sha256 of the checkpoint's config and weight files (or, for a model object, of its weights),
so results of different weights never share a key. The name is remembered for the rest of the
process; the result records the directory and the sha256 of the converted weights.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.zoo.hub import ModelUnavailable

if TYPE_CHECKING:  # imported where used, so listing models costs no torch
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

LOCAL_PREFIX = "local:"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class LocalArchitecture:
    """How one Hugging Face architecture becomes a `HookedTransformer`.

    Attributes:
        config: Hugging Face config -> `HookedTransformerConfig` fields (shape, activation,
            normalisation), read from the local config only.
        weights: (Hugging Face model, TransformerLens config) -> TransformerLens state dict;
            TransformerLens's conversion function for the architecture.
    """

    config: Callable[[Any], dict[str, Any]]
    weights: Callable[[torch.nn.Module, HookedTransformerConfig], dict[str, torch.Tensor]]


def _gpt2_config(hf: Any) -> dict[str, Any]:
    """GPT2Config -> TransformerLens fields (the mapping TransformerLens uses for GPT-2, with the
    MLP width taken from `n_inner` when a checkpoint sets it)."""
    return {
        "d_model": hf.n_embd,
        "d_head": hf.n_embd // hf.n_head,
        "n_heads": hf.n_head,
        "d_mlp": hf.n_inner or 4 * hf.n_embd,
        "n_layers": hf.n_layer,
        "n_ctx": hf.n_positions,
        "eps": hf.layer_norm_epsilon,
        "d_vocab": hf.vocab_size,
        "act_fn": hf.activation_function,
        "use_attn_scale": getattr(hf, "scale_attn_weights", True),
        "scale_attn_by_inverse_layer_idx": bool(getattr(hf, "scale_attn_by_inverse_layer_idx", False)),
        "normalization_type": "LN",
        "positional_embedding_type": "standard",
    }


def _gpt2_weights(hf_model: torch.nn.Module, cfg: HookedTransformerConfig) -> dict[str, torch.Tensor]:
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    return convert_gpt2_weights(hf_model, cfg)


LOCAL_ARCHITECTURES: dict[str, LocalArchitecture] = {
    "GPT2LMHeadModel": LocalArchitecture(_gpt2_config, _gpt2_weights),
}
"""Hugging Face architecture name (config.json's `architectures[0]`) -> its conversion. Another
architecture joins by adding a row: its config mapping and TransformerLens's weight converter."""

_LOADED: dict[str, Path | HookedTransformer | Callable[[], HookedTransformer]] = {}


def register_factory(name: str, factory: Callable[[], HookedTransformer]) -> None:
    """Make a model built here usable by name for the rest of the process (a user's RASP
    program file registers its compiled model this way)."""
    _LOADED[name] = factory


def is_checkpoint_dir(text: str) -> bool:
    """Whether `text` names a directory holding a Hugging Face config (a local checkpoint)."""
    path = Path(text)
    return path.is_dir() and (path / "config.json").is_file()


def is_local_name(name: str) -> bool:
    """A local model known to this process (by its `local:` name) or a checkpoint directory."""
    return name in _LOADED or is_checkpoint_dir(name)


def _checkpoint_files(directory: Path) -> list[Path]:
    return [directory / "config.json", *sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES)]


def checkpoint_sha256(directory: Path) -> str:
    """sha256 over the checkpoint's config.json and weight files (names and bytes, sorted);
    computed once per version of the files in a process (a name is resolved several times a run)."""
    files = _checkpoint_files(directory)
    stamp = tuple((path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    return _files_sha256(tuple(files), stamp)


@functools.cache
def _files_sha256(files: tuple[Path, ...], stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\n".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _name(label: str, digest: str) -> str:
    return f"{LOCAL_PREFIX}{re.sub(r'[^A-Za-z0-9._-]+', '_', label) or 'model'}@{digest[:10]}"


def local_model_name(text: str) -> str:
    """The `local:` name of a checkpoint directory (remembered for this process), or `text`
    itself when it already is a known local name."""
    if text in _LOADED:
        return text
    directory = Path(text).resolve()
    name = _name(directory.name, checkpoint_sha256(directory))
    _LOADED[name] = directory
    return name


def use_model(model: torch.nn.Module, label: str = "model", tokenizer: Any = None) -> str:
    """Make a model object from Python usable by name (in `RunRequest(model=...)`): a
    `HookedTransformer`, or a Hugging Face causal LM of an architecture in `LOCAL_ARCHITECTURES`
    (converted here; `tokenizer` is attached when given). Returns its `local:` name.

    Raises:
        ModelUnavailable: a Hugging Face model of an architecture with no conversion.
    """
    from transformer_lens import HookedTransformer

    from bench.provenance import weights_sha256
    from bench.runtime import enable_edge_hooks

    if not isinstance(model, HookedTransformer):
        model = convert_hf_model(model, model.config, tokenizer, device=str(next(model.parameters()).device))
    elif tokenizer is not None:
        model.set_tokenizer(tokenizer)
    name = _name(label, weights_sha256(model))
    model.cfg.model_name = name
    _LOADED[name] = enable_edge_hooks(model.eval())
    return name


def model_directory(name: str) -> str | None:
    """The checkpoint directory a local name was loaded from (None for a model object)."""
    source = _LOADED.get(name)
    return str(source) if isinstance(source, Path) else None


def architecture_of(hf_config: Any) -> LocalArchitecture:
    names = list(getattr(hf_config, "architectures", None) or [])
    for name in names:
        if name in LOCAL_ARCHITECTURES:
            return LOCAL_ARCHITECTURES[name]
    shown = names[0] if names else f"model_type {getattr(hf_config, 'model_type', None)!r}"
    raise ModelUnavailable(
        f"local checkpoint architecture {shown!r} is not supported; valid choices: {', '.join(LOCAL_ARCHITECTURES)}"
    )


def convert_hf_model(
    hf_model: torch.nn.Module, hf_config: Any, tokenizer: Any = None, device: str = "cpu"
) -> HookedTransformer:
    """A Hugging Face causal LM as a `HookedTransformer`, processed as TransformerLens processes
    hub models by default (LayerNorm folded, writing weights and unembedding centred)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    arch = architecture_of(hf_config)
    fields = arch.config(hf_config)
    fields["original_architecture"] = (hf_config.architectures or [type(hf_model).__name__])[0]
    dtype = next(hf_model.parameters()).dtype
    unfolded = HookedTransformerConfig(**fields, dtype=dtype, device=device)
    state_dict = arch.weights(hf_model, unfolded)
    fold_ln = fields["normalization_type"] in ("LN", "RMS")
    if fold_ln:
        fields["normalization_type"] += "Pre"
    cfg = HookedTransformerConfig(**fields, dtype=dtype, device=device, init_weights=False)
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(
        {key: value.detach().clone() for key, value in state_dict.items()},
        fold_ln=fold_ln,
        center_writing_weights=fields["positional_embedding_type"] != "shortformer",
        center_unembed=True,
        fold_value_biases=True,
    )
    return model if device == "cpu" else model.to(device)  # built on the CPU; TransformerLens's .to prints


def load_checkpoint(directory: Path, device: str = "cpu") -> HookedTransformer:
    """Load a `save_pretrained` directory offline (nothing is fetched from the hub).

    Raises:
        ModelUnavailable: no readable config or weights, or an unsupported architecture (one line).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        hf_config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelUnavailable(f"local checkpoint {directory}: config.json cannot be read ({err})") from None
    architecture_of(hf_config)  # refuse before loading the weights
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as err:
        first = next(iter(str(err).splitlines()), "")
        raise ModelUnavailable(f"local checkpoint {directory}: weights cannot be loaded ({first})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, TypeError):
        tokenizer = None  # a checkpoint without a tokenizer still runs token-id tasks
    model = convert_hf_model(hf_model.eval(), hf_config, tokenizer, device)
    return model


def load_local(name: str, device: str = "cpu") -> HookedTransformer:
    """The model behind a local name (or a checkpoint directory)."""
    from transformer_lens import HookedTransformer

    name = local_model_name(name)
    source = _LOADED[name]
    if isinstance(source, HookedTransformer):
        return source
    if not isinstance(source, Path):
        return source()
    model = load_checkpoint(source, device)
    model.cfg.model_name = name
    return model
