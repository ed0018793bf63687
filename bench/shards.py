"""Split a sweep's plan into N parts for SLURM job arrays and Kubernetes indexed jobs.

Each job of an array runs the same `run --all` line with its own `--shard I/N`; the parts are
exact (every run in exactly one part) because they are round-robin over the plan's runs sorted
by their result path, which depends only on each run's identity, never on the order the plan
was built in or on which machine builds it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.runner import RunRequest


@dataclass(frozen=True)
class Shard:
    """Part `index` (1-based, as `sbatch --array=1-N` numbers jobs) of `count` parts."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: I must be between 1 and N, and N at least 1")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`--shard I/N` as argparse reads it: a bad value is one line naming it (exit 2)."""
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return Shard(int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shard must be I/N with 1 <= I <= N (e.g. 2/4, or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), "
            f"got {text!r}"
        ) from None


def _identity(request: RunRequest) -> str:
    """A run's result path relative to the results directory: its identity as a sortable string."""
    from pathlib import Path

    return request.resolve().path(Path()).as_posix()


def shard_plan(plan: list[RunRequest], shard: Shard) -> list[RunRequest]:
    """The runs of `plan` that belong to `shard`, in the plan's own order."""
    order = sorted(range(len(plan)), key=lambda i: _identity(plan[i]))
    mine = set(order[shard.index - 1 :: shard.count])
    return [request for i, request in enumerate(plan) if i in mine]
