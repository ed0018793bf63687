"""siit-sort: sort 5 distinct keys from {1..6} (SIIT-trained model)."""

from __future__ import annotations

from functools import partial

from bench.zoo.trained.siit import DEFAULT_EXAMPLES
from tasks.base import Task
from tasks.siit_data import CITATION, build_siit_data

TASK = Task(
    name="siit-sort",
    model="siit-sort",
    description="sort 5 distinct keys from {1..6} (SIIT model)",
    citation=CITATION,
    metric="log-prob of the full model's answer",
    build=partial(build_siit_data, "sort"),
    default_examples=DEFAULT_EXAMPLES,
)
