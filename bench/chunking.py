"""Scoring a run's examples a chunk at a time, so a gradient method's activations fit a device.

A method whose scores are a mean over examples of per-example terms (EAP, EAP-IG, exact
patching) gives the same scores when its examples are split into chunks, each scored on its
own run, and the chunks' scores are averaged with their sizes as weights: only the order of
the float sums changes. Each chunk keeps the whole draw's mean-ablation reference, so every
chunk is ablated exactly as the whole run is, and the task metric (a closure over the whole
draw's answers) reads each chunk at its own examples' places. The peak memory of the
method's forward and backward falls with the chunk size (`bench.memory_estimate.fit_chunk`
says which size fits a device); the passes multiply by the number of chunks.
"""

from __future__ import annotations

import dataclasses

import torch

from bench.discovery import EdgeScores, MethodFn, prepare_run
from bench.runtime import MaskedRuntime
from bench.task_data import Metric, TaskData


def _chunk_metric(metric: Metric, n_examples: int, index: torch.Tensor) -> Metric:
    """`metric` read at `index`: the chunk's logits are placed at their examples' rows of a
    whole-draw tensor (other rows zero), the whole draw's metric is taken and the chunk's rows
    are kept, so a metric that closes over per-example answers sees each example's own."""

    def chunk_metric(logits: torch.Tensor) -> torch.Tensor:
        shape = (*logits.shape[:-3], n_examples, *logits.shape[-2:])
        whole = logits.new_zeros(shape).index_copy(-3, index, logits)
        return metric(whole).index_select(-1, index)

    return chunk_metric


def example_chunk(data: TaskData, start: int, stop: int) -> TaskData:
    """Examples `start:stop` of `data` as task data of their own (same ablation reference)."""
    index = torch.arange(start, stop)
    positions = data.output_positions
    if isinstance(positions, torch.Tensor):
        positions = positions[start:stop]
    reference = data.corrupted if data.reference is None else data.reference
    reference_mask = data.reference_mask
    if data.reference is None and data.attention_mask is not None:
        reference_mask = data.attention_mask  # the corrupted inputs' padding is the clean one's
    return dataclasses.replace(
        data,
        clean=data.clean[start:stop],
        corrupted=data.corrupted[start:stop],
        metric=_chunk_metric(data.metric, data.n_examples, index),
        reference=reference,
        reference_mask=reference_mask,
        output_positions=positions,
        dataset=None,
        attention_mask=None if data.attention_mask is None else data.attention_mask[start:stop],
    )


def chunk_bounds(n_examples: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of consecutive chunks of at most `size` examples."""
    if size < 1:
        raise ValueError(f"examples per pass must be at least 1, got {size}")
    return [(start, min(start + size, n_examples)) for start in range(0, n_examples, size)]


def score_in_chunks(
    method: MethodFn,
    runtime: MaskedRuntime,
    data: TaskData,
    ablation: str,
    seed: int,
    options: dict,
    size: int,
) -> EdgeScores:
    """`method`'s scores on `data`, computed `size` examples at a time and averaged with the
    chunks' sizes as weights (float64 accumulation). Node scores, where a method gives them,
    are averaged the same way."""
    total = torch.zeros(runtime.graph.n_edges, dtype=torch.float64)
    nodes: dict[str, float] | None = None
    for start, stop in chunk_bounds(data.n_examples, size):
        scores = method(prepare_run(runtime, example_chunk(data, start, stop), ablation, seed, options))
        weight = (stop - start) / data.n_examples
        total += scores.values.detach().to(torch.float64).cpu() * weight
        if scores.node_scores is not None:
            nodes = nodes or {}
            for name, value in scores.node_scores.items():
                nodes[name] = nodes.get(name, 0.0) + value * weight
    return EdgeScores(total.to(torch.float32), nodes)


def examples_per_pass_for(
    method: str, config: dict, n_examples: int, pos: int, dtype: str, device_bytes: float, options: dict | None = None
) -> int | None:
    """The most examples per pass whose estimated peak fits `device_bytes`; None when the whole
    draw fits (no chunking), 1 when not even one example fits by the estimate (the run then
    tries one at a time rather than refusing: the estimate errs by up to 20%)."""
    from bench.memory_estimate import estimate, fit_chunk

    if estimate(method, config, n_examples, pos, dtype, options).peak_bytes <= device_bytes:
        return None
    found = fit_chunk(method, config, n_examples, pos, dtype, device_bytes, options)
    return 1 if found is None else found[0]
