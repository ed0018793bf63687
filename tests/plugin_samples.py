"""Objects that test entry points name (`tests.plugin_samples:...`): good ones and broken ones."""

from __future__ import annotations

import torch

from bench.api import DiscoveryRun, EdgeScores, Task, TaskData


def edge_index_scores(run: DiscoveryRun) -> EdgeScores:
    """Scores each edge by its position in the graph (a test plugin).

    Later lines are not part of the description.
    """
    return EdgeScores(torch.arange(run.graph.n_edges, dtype=torch.float32))


def needs_two_arguments(run: DiscoveryRun, extra: int) -> EdgeScores:
    """Breaks the method contract: a method takes one DiscoveryRun."""
    raise AssertionError("never called")


NOT_CALLABLE = 3


def _build(model: object, n_examples: int, seed: int) -> TaskData:
    tokens = torch.zeros(n_examples, 2, dtype=torch.long)
    return TaskData(tokens, tokens, lambda logits: logits[..., -1, 0], "first logit")


SAMPLE_TASK = Task(
    name="sample-task",
    model="gpt2",
    description="a test plugin task",
    citation="none",
    build=_build,
    default_examples=2,
)


def tiny_loader(seed: int = 0, device: str = "cpu") -> object:
    """A test plugin model."""
    raise AssertionError("never called")
