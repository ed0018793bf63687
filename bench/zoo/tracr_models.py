"""Tracr-compiled transformers converted to TransformerLens ``HookedTransformer``s.

Tracr (Lindner et al. 2023, "Tracr: Compiled Transformers as a Laboratory for
Interpretability") compiles a RASP program into transformer weights, so which
components implement the program is known *exactly*.  That makes these models
the only benchmark subjects with a fully known ground-truth circuit.  The built-in
programs are RASP program files in `bench.zoo.tracr_programs` (those of the ACDC paper, Conmy
et al. 2023, "Towards Automated Circuit Discovery for Mechanistic Interpretability":
``reverse`` over {1, 2, 3} and ``xproportion`` over {w, x, y, z}, ``max_seq_len=5``, BOS
``"BOS"``), read by the loader of a user's program file (`bench.zoo.rasp_files`); each is
compiled and its weights copied verbatim into a ``HookedTransformer`` so that
circuit-discovery methods written against TransformerLens can run on them.

The TL model is float32, like tracr's own parameters and forward pass; the two
agree to ~1e-7 on every input (see ``tests/test_tracr_models.py``), so float64
would buy nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import einops
import numpy as np
import torch
from tracr.compiler import compiling
from tracr.rasp import rasp
from tracr.transformer.encoder import CategoricalEncoder
from transformer_lens import HookedTransformer, HookedTransformerConfig

from bench.zoo.tracr_programs import load_program, program_names

MAX_SEQ_LEN = 5
COMPILER_BOS = "BOS"


@dataclass(frozen=True)
class RaspProgram:
    """A RASP program and what tracr needs to compile it: a built-in program's file
    (`bench.zoo.tracr_programs`) and a user's program file (`tasks.rasp_file_task`) are both read
    into one of these by `bench.zoo.rasp_files`, and compiled, converted and given ground truth
    by the same code.

    Attributes:
        name: short name (the model is `tracr-<name>` for the built-in programs).
        make_program: builds the program's output SOp (called once per compilation).
        vocab: the input tokens.
        max_seq_len: the longest input.
        compiler_bos: the BOS token tracr prepends (must not be in `vocab`).
        n_examples: the default number of examples of its task (None: the task decides).
        source: where the program comes from, for ground-truth files and `bench list`.
        description: one line for `bench list` (None: the task writes one).
        citation: the papers the program comes from (None: `source` stands for them).
    """

    name: str
    make_program: Callable[[], rasp.SOp]
    vocab: tuple
    max_seq_len: int = MAX_SEQ_LEN
    compiler_bos: str = COMPILER_BOS
    n_examples: int | None = None
    source: str = ""
    description: str | None = None
    citation: str | None = None

    @property
    def provenance(self) -> str:
        """Where it comes from, with its citation: what a ground-truth file records."""
        return f"{self.source} ({self.citation})" if self.citation else self.source


@dataclass(frozen=True)
class TracrModel:
    """A compiled tracr program together with its TransformerLens conversion."""

    name: str
    model: HookedTransformer
    assembled: Any  # tracr AssembledTransformerModel
    program: rasp.SOp
    vocab: tuple
    max_seq_len: int
    compiler_bos: str = COMPILER_BOS

    @property
    def categorical(self) -> bool:
        """Whether the program output is categorical (else numerical, 1 dim)."""
        return isinstance(self.assembled.output_encoder, CategoricalEncoder)

    def encode(self, inputs: Sequence[Sequence[Any]]) -> torch.Tensor:
        """Token ids ``[batch, 1 + seq]`` (BOS prepended) for equal-length inputs."""
        enc = self.assembled.input_encoder
        ids = [enc.encode([self.compiler_bos, *x]) for x in inputs]
        return torch.tensor(ids, dtype=torch.long)

    def encode_padded(
        self, inputs: Sequence[Sequence[Any]], padding_side: str = "right"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[batch, 1 + longest]`` (BOS prepended) for inputs of any lengths,
        padded with tracr's own pad token on ``padding_side``, and the attention mask
        (1 at BOS and the input, 0 at padding)."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"unknown padding side {padding_side!r}; valid choices: left, right")
        enc = self.assembled.input_encoder
        rows = [enc.encode([self.compiler_bos, *x]) for x in inputs]
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), enc.pad_encoding, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
            ids[i, span] = torch.tensor(row)
            mask[i, span] = 1
        return ids, mask

    def decode(self, logits: torch.Tensor) -> list[list[Any]]:
        """Program outputs per sequence from TL logits ``[batch, seq, d_vocab_out]``.

        Mirrors tracr's output encoder: argmax over output labels (categorical)
        or the raw value (numerical).  The BOS position is dropped.
        """
        logits = logits[:, 1:].detach()
        if self.categorical:
            dec = self.assembled.output_encoder.decode
            return [dec(row) for row in logits.argmax(-1).tolist()]
        return logits[..., 0].tolist()


def _unembedding(assembled: Any, sop: rasp.SOp) -> np.ndarray:
    """``[d_model, d_vocab_out]`` one-hot projection onto the output space."""
    if isinstance(assembled.output_encoder, CategoricalEncoder):
        by_index = sorted(assembled.output_encoder.encoding_map.items(), key=lambda kv: kv[1])
        out_labels = [f"{sop.label}:{value}" for value, _ in by_index]
    else:
        out_labels = [sop.label]
    w_u = np.zeros((len(assembled.residual_labels), len(out_labels)), dtype=np.float32)
    for j, label in enumerate(out_labels):
        w_u[assembled.residual_labels.index(label), j] = 1.0
    return w_u


def _to_hooked_transformer(assembled: Any, sop: rasp.SOp) -> HookedTransformer:
    """Copy tracr's haiku parameters into an equivalent ``HookedTransformer``.

    Tracr already pads every attention layer to ``num_heads`` heads of size
    ``key_size`` and every MLP to ``mlp_hidden_size`` with zero weights, and
    leaves unused (empty) sublayers all-zero, so the weights map one-to-one.
    """
    p = {k: {n: np.array(a, dtype=np.float32) for n, a in v.items()} for k, v in assembled.params.items()}
    mc = assembled.model_config
    w_u = _unembedding(assembled, sop)
    cfg = HookedTransformerConfig(
        n_layers=mc.num_layers,
        d_model=len(assembled.residual_labels),
        n_heads=mc.num_heads,
        d_head=mc.key_size,
        d_mlp=mc.mlp_hidden_size,
        d_vocab=p["token_embed"]["embeddings"].shape[0],
        d_vocab_out=w_u.shape[1],
        n_ctx=p["pos_embed"]["embeddings"].shape[0],
        act_fn="relu",
        normalization_type=None,
        attention_dir="bidirectional",
        positional_embedding_type="standard",
        dtype=torch.float32,
        device="cpu",
    )
    sd: dict[str, np.ndarray] = {
        "embed.W_E": p["token_embed"]["embeddings"],
        "pos_embed.W_pos": p["pos_embed"]["embeddings"],
        "unembed.W_U": w_u,
        "unembed.b_U": np.zeros(w_u.shape[1], dtype=np.float32),
    }
    h = mc.num_heads
    for i in range(mc.num_layers):
        attn, mlp = f"transformer/layer_{i}/attn", f"transformer/layer_{i}/mlp"
        for tl, tr in (("Q", "query"), ("K", "key"), ("V", "value")):
            sd[f"blocks.{i}.attn.W_{tl}"] = einops.rearrange(p[f"{attn}/{tr}"]["w"], "d (h k) -> h d k", h=h)
            sd[f"blocks.{i}.attn.b_{tl}"] = einops.rearrange(p[f"{attn}/{tr}"]["b"], "(h k) -> h k", h=h)
        sd[f"blocks.{i}.attn.W_O"] = einops.rearrange(p[f"{attn}/linear"]["w"], "(h k) d -> h k d", h=h)
        sd[f"blocks.{i}.attn.b_O"] = p[f"{attn}/linear"]["b"]
        sd[f"blocks.{i}.mlp.W_in"] = p[f"{mlp}/linear_1"]["w"]
        sd[f"blocks.{i}.mlp.b_in"] = p[f"{mlp}/linear_1"]["b"]
        sd[f"blocks.{i}.mlp.W_out"] = p[f"{mlp}/linear_2"]["w"]
        sd[f"blocks.{i}.mlp.b_out"] = p[f"{mlp}/linear_2"]["b"]

    model = HookedTransformer(cfg)
    missing = {n for n, _ in model.named_parameters()} - sd.keys()
    if missing:
        raise RuntimeError(f"tracr conversion left TL parameters unset: {sorted(missing)}")
    state = model.state_dict()
    for key, value in sd.items():
        if state[key].shape != value.shape:
            raise RuntimeError(f"{key}: TL shape {tuple(state[key].shape)} != tracr {value.shape}")
        state[key] = torch.from_numpy(value)
    model.load_state_dict(state)
    return model.eval()


def compile_program(program: RaspProgram) -> TracrModel:
    """Compile `program` with tracr and convert it to TransformerLens (not cached; see
    `build_tracr_model`)."""
    sop = program.make_program()
    assembled = compiling.compile_rasp_to_model(
        sop, vocab=set(program.vocab), max_seq_len=program.max_seq_len, compiler_bos=program.compiler_bos
    )
    return TracrModel(
        name=f"tracr-{program.name}",
        model=_to_hooked_transformer(assembled, sop),
        assembled=assembled,
        program=sop,
        vocab=tuple(program.vocab),
        max_seq_len=program.max_seq_len,
        compiler_bos=program.compiler_bos,
    )


def build_tracr_model(program: str | RaspProgram) -> TracrModel:
    """Compile ``program`` (a built-in program's name, a file stem in `bench.zoo.tracr_programs`,
    or a `RaspProgram`) and convert it to TransformerLens, once per process.

    Raises:
        ValueError: an unknown built-in name (the message lists the valid ones).
    """
    if isinstance(program, str):
        if program not in program_names():
            raise ValueError(f"unknown tracr program {program!r}; valid choices: {', '.join(program_names())}")
        program = load_program(program)
    return _compiled(program)


@functools.cache
def _compiled(program: RaspProgram) -> TracrModel:
    return compile_program(program)
