"""siit-hist: count each token's occurrences, length 5 over {a,b,c,d} (SIIT-trained model)."""

from __future__ import annotations

from functools import partial

from bench.zoo.trained.siit import DEFAULT_EXAMPLES
from tasks.base import Task
from tasks.siit_data import CITATION, build_siit_data

TASK = Task(
    name="siit-hist",
    model="siit-hist",
    description="count each token's occurrences, length 5 over {a,b,c,d} (SIIT model)",
    citation=CITATION,
    metric="log-prob of the full model's answer",
    build=partial(build_siit_data, "hist"),
    default_examples=DEFAULT_EXAMPLES,
)
