"""Padding: batches of sequences of different lengths, with a `[batch, pos]` attention mask
(1 = a real token, 0 = padding, on either side).

A padded position must never influence a real one. TransformerLens's forward takes the mask
(`attention_mask=`) and uses it to offset absolute and rotary positions (so left padding
works) and, in causal attention only, to mask padded keys; bidirectional models (the Tracr
ones) get the padded keys masked here, by hook or additive mask. Everything else the engines
do is per position, and the ablations and metrics read real positions only.

Example:
    >>> mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    >>> real_index(mask).tolist()
    [[0, 1, 2], [-1, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: the data contract (bench.task_data) imports this module
    from transformer_lens import HookedTransformer


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """The mask as 0/1 longs, or None when every position is real (nothing to mask)."""
    if attention_mask is None or bool(attention_mask.bool().all()):
        return None
    return attention_mask.long()


def check_attention_mask(attention_mask: torch.Tensor, tokens: torch.Tensor, what: str) -> None:
    """Refuse, in one line, a mask that does not fit `tokens` or leaves a sequence empty."""
    if attention_mask.shape != tokens.shape:
        raise ValueError(
            f"{what} attention mask {tuple(attention_mask.shape)} must have the tokens' shape {tuple(tokens.shape)}"
        )
    values = set(attention_mask.unique().tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{what} attention mask holds {sorted(values)}; valid values: 0 (padding), 1 (real token)")
    empty = torch.nonzero(~attention_mask.bool().any(1)).flatten().tolist()
    if empty:
        raise ValueError(f"{what} attention mask leaves sequences {empty[:5]} without a real token")


def real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each position's index among its sequence's real tokens, -1 at padding: `[batch, pos]`."""
    mask = attention_mask.long()
    return torch.where(mask.bool(), mask.cumsum(1) - 1, -1)


def forward_kwargs(model: HookedTransformer, tokens: torch.Tensor, attention_mask: torch.Tensor | None) -> dict:
    """Keyword arguments for the model's forward. Without padding none are needed, except for
    a tokenizer that pads on the left: TransformerLens would then guess a mask from the pad
    token's id, which real tokens (BOS = EOS = pad in GPT-2) can share; all ones stops it."""
    if attention_mask is not None:
        return {"attention_mask": attention_mask}
    if getattr(getattr(model, "tokenizer", None), "padding_side", "right") == "left":
        return {"attention_mask": torch.ones_like(tokens)}
    return {}


def masks_keys_itself(model: HookedTransformer) -> bool:
    """Whether TransformerLens masks padded keys in this model's attention (causal models)."""
    return model.cfg.attention_dir == "causal"


def additive_key_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`[batch, 1, 1, pos]`: 0 at real keys, -inf at padded ones."""
    blocked = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    return blocked.masked_fill(~attention_mask.bool(), -torch.inf)[:, None, None, :]


def key_mask_hooks(model: HookedTransformer, attention_mask: torch.Tensor | None) -> list[tuple[str, Callable]]:
    """Hooks that mask padded keys in every layer's attention scores, for models whose
    attention TransformerLens does not mask (bidirectional ones); none otherwise."""
    if attention_mask is None or masks_keys_itself(model):
        return []
    bias = additive_key_mask(attention_mask, model.cfg.dtype)

    def hook(scores: torch.Tensor, hook: object) -> torch.Tensor:
        return scores + bias

    return [(f"blocks.{layer}.attn.hook_attn_scores", hook) for layer in range(model.cfg.n_layers)]


def padded_forward(model: HookedTransformer, tokens: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The model's plain logits on a padded batch, padded keys masked in every model."""
    mask = padding_mask(attention_mask)
    with model.hooks(fwd_hooks=key_mask_hooks(model, mask)):
        return model(tokens, **forward_kwargs(model, tokens, mask))


def real_position_mean(
    outputs: torch.Tensor, reference_mask: torch.Tensor | None, run_mask: torch.Tensor | None
) -> torch.Tensor:
    """Mean ablation's per-position mean over real positions only, laid out for the run.

    Args:
        outputs: `[n_reference, pos, ...]` what each reference sequence computes.
        reference_mask: the reference sequences' attention mask (None: no padding).
        run_mask: the attention mask of the run the mean stands in for (None: no padding).

    Returns:
        `[1, run_pos, ...]` when the run's real tokens sit at the same positions in every
        sequence (no padding, or right padding), else `[batch, run_pos, ...]`: at each real
        position, the mean of the reference sequences' outputs at that same real index (the
        i-th real token, wherever padding put it); zero at padding.

    Raises:
        ValueError: a real position of the run has no reference sequence that long.
    """
    if reference_mask is None and run_mask is None:
        return outputs.mean(0, keepdim=True)
    n_ref, ref_pos = outputs.shape[:2]
    ref_index = real_index(reference_mask if reference_mask is not None else torch.ones(n_ref, ref_pos))
    real = ref_index >= 0
    length = int(ref_index.max()) + 1
    sums = outputs.new_zeros(length, *outputs.shape[2:]).index_add_(0, ref_index[real], outputs[real])
    ones = torch.ones(int(real.sum()), dtype=outputs.dtype)
    counts = torch.zeros(length, dtype=outputs.dtype).index_add_(0, ref_index[real], ones)
    run_index = torch.arange(ref_pos)[None] if run_mask is None else real_index(run_mask)
    needed = int(run_index.max()) + 1
    if needed > length or bool((counts[: max(needed, 0)] == 0).any()):
        have = int((counts > 0).sum())
        raise ValueError(f"mean ablation: the run has {needed} real positions, the reference sequences cover {have}")
    means = torch.cat([sums / counts.view(-1, *[1] * (outputs.dim() - 2)), outputs.new_zeros(1, *outputs.shape[2:])])
    shared = bool(((run_index == torch.arange(run_index.shape[1])) | (run_index < 0)).all())
    if shared:  # real position p is the p-th real token in every sequence
        index = torch.where(run_index.amax(0) >= 0, torch.arange(run_index.shape[1]), length)
        return means[index][None]
    return means[torch.where(run_index >= 0, run_index, length)]
