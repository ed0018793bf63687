"""Which ground-truth edges a method can possibly find under an ablation.

An edge whose removal alone changes no output under that ablation is invisible to every
method (e.g. an edge that carries the same value in the clean and the corrupted run), so
recovery is scored against both the full ground truth and its detectable part.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformer_lens import HookedTransformer

from bench.discovery import prepare_run
from bench.runtime import MaskedRuntime
from bench.task_data import TaskData

OUTPUT_CHANGE_TOL = 1e-3
DETECTABLE_RULE = (
    f"removing the edge alone changes some output by more than {OUTPUT_CHANGE_TOL} on the task's "
    "default examples (seed 0) under that ablation"
)


@torch.no_grad()
def detectable_edges(
    model: HookedTransformer, data: TaskData, edges: Sequence[str], ablation: str, seed: int = 0, chunk: int = 4
) -> list[str]:
    """The `edges` whose removal alone changes some output (at the task's real output positions) by
    more than OUTPUT_CHANGE_TOL under `ablation`. `chunk` masks share one batched forward; each
    returns full logits (100 GPT-2 prompts of 16 tokens take 0.3 GB per mask), hence the small default."""
    runtime = MaskedRuntime(model)
    run = prepare_run(runtime, data, ablation, seed)
    graph = runtime.graph
    ids = torch.tensor([graph.edge_index(name) for name in edges], dtype=torch.long)
    real = data.output_weights[..., None] if data.output_weights is not None else 1.0  # padding never counts
    changes = [
        (data.outputs(runtime.forward(data.clean, graph.masks_without(part), run.ablated) - run.full_logits) * real)
        .abs()
        .flatten(1)
        .amax(dim=1)
        for part in ids.split(chunk)
    ]
    change = torch.cat(changes) if changes else torch.zeros(0)
    return [name for name, delta in zip(edges, change.tolist(), strict=True) if delta > OUTPUT_CHANGE_TOL]
