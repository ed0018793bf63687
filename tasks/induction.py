"""induction: predict the second half of a repeated random-token sequence (induction heads).

Works on any model that takes 2 x HALF positions: token ids are drawn below the model's
vocabulary size. The corruption resamples the first occurrence, so the second half is no
longer a repeat.
"""

from __future__ import annotations

from transformer_lens import HookedTransformer

from bench.zoo.trained.induction import HALF, repeat_logprob, repeat_positions, repeated_sequences
from tasks.base import ModelNeeds, Task, TaskData, token_pairs_dataset


def build_induction_data(model: HookedTransformer, n_examples: int, seed: int) -> TaskData:
    clean, corrupted = repeated_sequences(n_examples, model.cfg.d_vocab, seed)
    return TaskData(
        clean,
        corrupted,
        repeat_logprob(clean),
        "mean log-prob of the next token on the repeat",
        output_positions=repeat_positions(),
        dataset=token_pairs_dataset(clean, corrupted),
    )


TASK = Task(
    name="induction",
    model="induction-2l",
    description="continue a repeated random-token sequence",
    metric="mean log-prob of the next token on the repeat",
    citation="Olsson et al. 2022 (induction heads); Conmy et al. 2023, ACDC (induction task, redwood_attn_2l)",
    build=build_induction_data,
    default_examples=64,  # ACDC's induction ROC runs used 50 sequences; 256 made ACDC take 8 minutes here
    other_models=("redwood_attn_2l", "random:redwood_attn_2l"),
    needs=ModelNeeds(n_ctx=2 * HALF),  # random token ids below any vocabulary: only the length matters
    any_hub_model=True,  # run --all --models random:llama3@tiny pairs it too
)
