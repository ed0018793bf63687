"""siit-xproportion: running fraction of 'x', length 5 over {w,x,y,z} (SIIT-trained model)."""

from __future__ import annotations

from functools import partial

from bench.zoo.trained.siit import DEFAULT_EXAMPLES
from tasks.base import Task
from tasks.siit_data import CITATION, build_siit_data

TASK = Task(
    name="siit-xproportion",
    model="siit-xproportion",
    description="running fraction of 'x', length 5 over {w,x,y,z} (SIIT model)",
    citation=CITATION,
    metric="neg. squared L2 to the full model's output",
    build=partial(build_siit_data, "xproportion"),
    default_examples=DEFAULT_EXAMPLES,
)
