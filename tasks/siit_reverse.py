"""siit-reverse: reverse a length-5 sequence over {1,2,3} (SIIT-trained model)."""

from __future__ import annotations

from functools import partial

from bench.zoo.trained.siit import DEFAULT_EXAMPLES
from tasks.base import Task
from tasks.siit_data import CITATION, build_siit_data

TASK = Task(
    name="siit-reverse",
    model="siit-reverse",
    description="reverse a length-5 sequence over {1,2,3} (SIIT model)",
    citation=CITATION,
    metric="log-prob of the full model's answer",
    build=partial(build_siit_data, "reverse"),
    default_examples=DEFAULT_EXAMPLES,
)
