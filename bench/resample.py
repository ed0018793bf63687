"""A task's examples resampled (with replacement) by index, for bootstrap reruns of a method.

A task's metric closes over per-example state (answer tokens, full-model outputs, output
positions), so it cannot simply be applied to a resample. The resampled metric puts each drawn
example back at its original index in a full-size logits tensor and reads the task's metric
there; an example drawn c times is read in c passes, one copy per pass, so duplicates never
collide. This needs the metric to be per-example (example i's score reads only example i's
logits), which `bench.task_data.Metric` promises.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from bench.task_data import TaskData


def _copy_numbers(indices: torch.Tensor) -> torch.Tensor:
    """For each position j, how many times `indices[j]` occurred before j."""
    seen: dict[int, int] = {}
    copies = []
    for i in indices.tolist():
        copies.append(seen.get(i, 0))
        seen[i] = copies[-1] + 1
    return torch.tensor(copies, dtype=torch.long)


def resample_data(data: TaskData, indices: torch.Tensor) -> TaskData:
    """`data` restricted to the examples at `indices` (repeats allowed), with a metric that
    scores each drawn example as the task's metric scores it in place."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    if indices.dim() != 1 or len(indices) == 0 or int(indices.min()) < 0 or int(indices.max()) >= data.n_examples:
        raise ValueError(f"indices must be a non-empty 1-d tensor of example numbers below {data.n_examples}")
    n, copies = data.n_examples, _copy_numbers(indices)
    task_metric = data.metric

    def metric(logits: torch.Tensor) -> torch.Tensor:
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        for copy in range(int(copies.max()) + 1):
            drawn = (copies == copy).nonzero().flatten().to(logits.device)
            where = indices.to(logits.device)[drawn]
            full = logits.new_zeros(*logits.shape[:-3], n, *logits.shape[-2:])
            full = full.index_copy(-3, where, logits.index_select(-3, drawn))
            parts.append((drawn, task_metric(full).index_select(-1, where)))
        values = parts[0][1].new_empty(*parts[0][1].shape[:-1], len(indices))
        for drawn, scores in parts:
            values = values.index_copy(-1, drawn, scores)
        return values

    positions = data.output_positions
    return replace(
        data,
        clean=data.clean[indices],
        corrupted=data.corrupted[indices],
        metric=metric,
        output_positions=positions if isinstance(positions, slice) else positions[indices],
        dataset=None,
        attention_mask=None if data.attention_mask is None else data.attention_mask[indices],
    )
